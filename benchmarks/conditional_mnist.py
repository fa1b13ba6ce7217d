"""Conditional cross-attention (one embedding per attribute) on digit x colour x background.

Data: the first ``--n-train`` + ``--n-test`` mnist-t10k digits, coloured by
``multi_attribute_digits`` (4 colours, 4 backgrounds). Three models, all a ConvTokens backbone
with a cross-attention head and ``--dim``-d outputs, SupCon (T = 0.1) per attribute:

- conditional: ONE network, one condition token per attribute -> one embedding each;
- unconditioned: ONE network, ONE embedding (one condition token) trained with the sum of the
  three attributes' losses on it; every attribute is retrieved with that embedding;
- separate: one network per attribute (three times the parameters and training time).

Per-attribute retrieval mAP on the test images (each test image queries the others; relevant
= same attribute value). The conditional embeddings are searched through a MultiAspectIndex
(``aspect=...``); the mAP is computed from its top-(n-1) lists.

Usage:
    python benchmarks/conditional_mnist.py [--data ../shared/data/mnist-t10k]
        [--n-train 3000] [--n-test 1000] [--epochs 3] [--dim 32] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from embedlab.data.mnist import load_mnist
from embedlab.data.multi_attribute import multi_attribute_digits
from embedlab.index.aspects import MultiAspectIndex
from embedlab.losses.supcon import SupConLoss
from embedlab.training.conditional_head import ConditionalEmbedder, fit_conditional

ATTRS = ("digit", "colour", "background")


def map_from_ranking(ids: np.ndarray, labels: np.ndarray) -> float:
    """mAP of ranked lists ``ids (n, k)`` (self already removed) against same-label relevance."""
    aps = []
    for q in range(ids.shape[0]):
        rel = labels[ids[q]] == labels[q]
        if not rel.any():
            continue
        hits = np.cumsum(rel)
        aps.append(float((hits[rel] / (np.flatnonzero(rel) + 1)).mean()))
    return float(np.mean(aps))


def ranked(emb: np.ndarray) -> np.ndarray:
    """Cosine ranking of every row against the others (self removed)."""
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True).clip(1e-12)
    s = e @ e.T
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1)[:, :-1]


def drop_self(ids: np.ndarray) -> np.ndarray:
    out = np.empty((ids.shape[0], ids.shape[1] - 1), dtype=ids.dtype)
    for q in range(ids.shape[0]):
        out[q] = ids[q][ids[q] != q][: ids.shape[1] - 1]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="../shared/data/mnist-t10k")
    p.add_argument("--n-train", type=int, default=3000)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    raw = load_mnist(args.data)
    ntr, nte = args.n_train, args.n_test
    data = multi_attribute_digits(raw.x[: ntr + nte], raw.y[: ntr + nte], seed=args.seed)
    x = torch.as_tensor(data.x)
    xtr, xte = x[:ntr], x[ntr:]
    ytr = {a: data.attributes[a][:ntr] for a in ATTRS}
    yte = {a: data.attributes[a][ntr:] for a in ATTRS}
    results: dict[str, dict[str, float]] = {}
    secs: dict[str, float] = {}

    t0 = time.perf_counter()
    cond = ConditionalEmbedder(list(ATTRS), dim=args.dim, seed=args.seed)
    fit_conditional(cond, xtr, ytr, epochs=args.epochs, seed=args.seed)
    secs["conditional"] = time.perf_counter() - t0
    aspects = cond.embed_aspects(xte)
    index = MultiAspectIndex(dict.fromkeys(ATTRS, args.dim))
    index.add(aspects)
    results["conditional"] = {}
    for a in ATTRS:
        _, ids = index.search({a: aspects[a]}, k=nte, aspect=a)
        results["conditional"][a] = map_from_ranking(drop_self(ids), yte[a])

    # One embedding for all attributes: the sum of the three losses on the same vector.
    t0 = time.perf_counter()
    shared = ConditionalEmbedder(["all"], dim=args.dim, seed=args.seed)
    loss_fn = SupConLoss(temperature=0.1)
    opt = torch.optim.Adam(shared.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(args.seed)
    ys = [torch.as_tensor(ytr[a]) for a in ATTRS]
    for _ in range(args.epochs):
        order = torch.randperm(ntr, generator=gen)
        for s in range(0, ntr, 128):
            idx = order[s : s + 128]
            z = shared(xtr[idx])[:, 0]
            loss = torch.stack([loss_fn(z, y[idx]) for y in ys]).sum()
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    secs["unconditioned"] = time.perf_counter() - t0
    ids = ranked(shared.embed_aspects(xte)["all"])
    results["unconditioned"] = {a: map_from_ranking(ids, yte[a]) for a in ATTRS}

    t0 = time.perf_counter()
    results["separate"] = {}
    for a in ATTRS:
        single = ConditionalEmbedder([a], dim=args.dim, seed=args.seed)
        fit_conditional(single, xtr, {a: ytr[a]}, epochs=args.epochs, seed=args.seed)
        results["separate"][a] = map_from_ranking(ranked(single.embed_aspects(xte)[a]), yte[a])
    secs["separate"] = time.perf_counter() - t0

    print(f"n_train={ntr} n_test={nte} epochs={args.epochs} dim={args.dim} seed={args.seed}")
    print(f"{'model':15s} " + " ".join(f"{a:>11s}" for a in ATTRS) + "   mean   train s")
    for name, row in results.items():
        vals = [row[a] for a in ATTRS]
        cells = " ".join(f"{v:11.3f}" for v in vals)
        print(f"{name:15s} {cells}  {np.mean(vals):.3f}  {secs[name]:7.1f}")


if __name__ == "__main__":
    main()
