"""Zero-shot model stitching with relative representations (Moschella et al., ICLR 2023).

Two MLP encoders (784 -> 256 -> 64) are trained on MNIST with different seeds, each with its
own classifier head. Stitching feeds encoder A's output to head B, with no training:

- absolute: head B reads encoder A's raw 64-d latent. The two latent spaces differ by an
  unknown (roughly orthogonal) transform, so this should fail.
- relative: each model represents a sample by its cosine similarities to the same 300
  anchor images embedded by its own encoder (``relative_projection``); its head is trained
  on that representation. Head B then reads A's relative representation
  (``embedlab.analysis.stitch``); the paper's claim is that this works.

Data: ../shared/data/mnist-t10k (the 10,000 MNIST test images), split 8,000 train /
2,000 test; anchors are 300 training images. Skips with a reason if the data is absent.

Usage:
    python benchmarks/stitching_mnist.py [--epochs 3] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from embedlab.analysis import linear_cka, relative_projection, stitch

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist-t10k"


def encoder() -> nn.Module:
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 64))


def head(n_in: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, 128), nn.ReLU(), nn.Linear(128, 10))


def cosine(z: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Differentiable relative projection, (batch, dim) x (n_anchors, dim) -> (batch, n_anchors)."""
    return nn.functional.normalize(z, dim=1) @ nn.functional.normalize(anchors, dim=1).T


def train(
    x: torch.Tensor,
    y: torch.Tensor,
    anchors_x: torch.Tensor,
    *,
    relative: bool,
    seed: int,
    epochs: int,
) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    enc = encoder()
    hd = head(anchors_x.shape[0] if relative else 64)
    opt = torch.optim.Adam([*enc.parameters(), *hd.parameters()], lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(x.shape[0], generator=gen)
        for start in range(0, x.shape[0], 128):
            idx = perm[start : start + 128]
            z = enc(x[idx])
            feats = cosine(z, enc(anchors_x)) if relative else z
            loss = nn.functional.cross_entropy(hd(feats), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    enc.eval()
    hd.eval()
    return enc, hd


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == y).mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs=2, default=[0, 1])
    parser.add_argument("--anchors", type=int, default=300)
    args = parser.parse_args(argv)
    if not MNIST.is_dir():
        print(f"skip: {MNIST} not found (see ../shared/data/README.md)")
        return 0
    from embedlab.data import load_mnist

    t_start = time.perf_counter()
    data = load_mnist(MNIST)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(data))
    tr, te = perm[:8000], perm[8000:]
    flat = data.flat()
    x_tr, y_tr = torch.from_numpy(flat[tr]), torch.from_numpy(data.y[tr])
    x_te, y_te = torch.from_numpy(flat[te]), data.y[te]
    anchor_x = x_tr[torch.from_numpy(rng.choice(8000, args.anchors, replace=False))]

    models = {}
    for relative in (False, True):
        for seed in args.seeds:
            models[relative, seed] = train(
                x_tr, y_tr, anchor_x, relative=relative, seed=seed, epochs=args.epochs
            )
    a, b = args.seeds
    with torch.no_grad():
        lat = {k: enc(x_te).numpy() for k, (enc, _) in models.items()}
        anc = {k: enc(anchor_x).numpy() for k, (enc, _) in models.items()}

    def abs_acc(enc_seed: int, head_seed: int) -> float:
        hd = models[False, head_seed][1]
        with torch.no_grad():
            logits = hd(torch.from_numpy(lat[False, enc_seed])).numpy()
        return accuracy(logits, y_te)

    def rel_acc(enc_seed: int, head_seed: int) -> float:
        hd = models[True, head_seed][1]
        return accuracy(stitch(lat[True, enc_seed], anc[True, enc_seed], hd), y_te)

    print(f"MNIST t10k: 8000 train / 2000 test, {args.anchors} anchors, {args.epochs} epochs")
    print(f"{'representation':<16}{'A->A':>8}{'B->B':>8}{'A->B':>8}{'B->A':>8}   (encoder->head)")
    for name, fn in (("absolute", abs_acc), ("relative", rel_acc)):
        cells = [fn(a, a), fn(b, b), fn(a, b), fn(b, a)]
        print(f"{name:<16}" + "".join(f"{c:8.3f}" for c in cells))
    cka_abs = linear_cka(lat[False, a], lat[False, b])
    ra = relative_projection(lat[True, a], anc[True, a])
    rb = relative_projection(lat[True, b], anc[True, b])
    print(
        f"linear CKA between the two absolute latents: {cka_abs:.3f}; "
        f"mean |rel_A - rel_B| = {np.abs(ra - rb).mean():.3f}, "
        f"CKA(rel_A, rel_B) = {linear_cka(ra, rb):.3f}"
    )
    print(f"total time {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
