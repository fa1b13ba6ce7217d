"""Mixup geometry on MNIST t10k: features of mixed inputs vs lam, ERM vs mixup training.

An MLP encoder (dim 64) and a linear classifier are trained with cross-entropy on digits
0-4 (90%), once plain (ERM) and once with input mixup (Zhang et al.; ``lam ~ Beta(a, a)``,
mixed targets). On held-out inputs (the other 10%) of every pair of classes (A, B),
``x = lam a + (1 - lam) b`` is embedded and :func:`embedlab.analysis.mixup_probe` measures
the position on the line between the class means (0 = mean of B, 1 = mean of A), the
distance to that line (/ distance between the means), the logit margin ``z_A - z_B`` and
the fraction classified A. Curves are averaged over the 10 class pairs. Neural-collapse
metrics (:func:`embedlab.analysis.neural_collapse`) of the clean training features are
printed next to them.

Usage:
    python benchmarks/mixup_probe_mnist.py [--data ../shared/data/mnist-t10k] [--epochs 15]
        [--alpha 1.0] [--seed 0]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (MNIST t10k IDX files)")
        return 0

    import torch
    import torch.nn.functional as F

    from embedlab.analysis import mixup_probe, neural_collapse
    from embedlab.bench.metric import load_labeled, metric_splits
    from embedlab.training.encoders import MLPEncoder
    from embedlab.training.metric import embed

    torch.set_num_threads(1)
    seen, _ = metric_splits(load_labeled(f"mnist:{args.data}"))
    held = np.random.default_rng(args.seed).random(len(seen)) < 0.1
    x_tr, y_tr = torch.from_numpy(seen.x[~held]), torch.from_numpy(seen.y[~held])
    x_te, y_te = seen.x[held], seen.y[held]
    lams = np.linspace(0.0, 1.0, 11)
    print(
        f"mnist t10k 0-4: {len(y_tr)} train / {len(y_te)} held out; mlp dim 64 + linear, "
        f"{args.epochs} epochs, Adam lr {args.lr}, mixup alpha {args.alpha}, seed {args.seed}",
        flush=True,
    )
    out: dict[str, dict[str, object]] = {}
    start = time.perf_counter()
    for mode in ("erm", "mixup"):
        torch.manual_seed(args.seed)
        enc = MLPEncoder(64, in_features=784, seed=args.seed)
        head = torch.nn.Linear(64, 5)
        opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=args.lr)
        gen = torch.Generator().manual_seed(args.seed)
        beta = torch.distributions.Beta(args.alpha, args.alpha)
        for _ in range(args.epochs):
            perm = torch.randperm(len(y_tr), generator=gen)
            for lo in range(0, len(perm), 128):
                idx = perm[lo : lo + 128]
                x, y = x_tr[idx], y_tr[idx]
                if mode == "mixup":
                    lam = float(beta.sample())
                    j = torch.randperm(len(idx), generator=gen)
                    logits = head(enc(lam * x + (1 - lam) * x[j]))
                    loss = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(
                        logits, y[j]
                    )
                else:
                    loss = F.cross_entropy(head(enc(x)), y)
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
        enc.eval()
        with torch.no_grad():
            acc = float((head(enc(torch.from_numpy(x_te))).argmax(1).numpy() == y_te).mean())
        feats_tr = embed(enc, x_tr.numpy())
        nc = neural_collapse(feats_tr, y_tr.numpy()).to_dict()
        w, b = head.weight.detach().numpy(), head.bias.detach().numpy()
        curves = []
        for ca, cb in itertools.combinations(range(5), 2):
            g = mixup_probe(
                lambda v, e=enc: embed(e, v), x_te[y_te == ca], x_te[y_te == cb], lams=lams,
                classifier=(w, b), classes=(ca, cb), seed=args.seed,
            )  # fmt: skip
            curves.append(g.to_dict())
        mean = {
            k: np.mean([c[k] for c in curves], axis=0).tolist()
            for k in ("position", "distance", "margin", "frac_a")
        }
        gap = float(np.mean([c["linearity_gap"] for c in curves]))
        out[mode] = {"accuracy": acc, "nc": nc, "curves": mean, "linearity_gap": gap}
        print(f"\n{mode}: held-out accuracy {acc:.4f}; NC of train features:", end="")
        print("".join(f" {k} {v:.4f}" for k, v in nc.items() if k != "n_classes"))
        print(f"  mean over 10 class pairs; mean max|position - lam| = {gap:.4f}")
        print(f"  {'lam':>5}{'position':>10}{'distance':>10}{'margin':>10}{'frac A':>8}")
        for i, lm in enumerate(lams):
            print(
                f"  {lm:5.1f}{mean['position'][i]:10.3f}{mean['distance'][i]:10.3f}"
                f"{mean['margin'][i]:10.2f}{mean['frac_a'][i]:8.3f}"
            )
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
