"""Objective-landscape intrinsic dimension d_int90 of an MLP on MNIST (Li et al., ICLR 2018).

The network is the paper's fully connected 784-200-200-10 (D = 199,210 parameters). It is
trained once in full (the baseline), then in random subspaces theta = theta0 + P theta_d for
each d; d_int90 is the smallest d whose validation accuracy reaches 90% of the baseline. The
paper reports d_int90 ~ 750 on full MNIST (60,000 training images).

Data: ../shared/data/mnist-t10k (the 10,000 MNIST test images), shuffled with seed 0 and split
8,000 train / 2,000 validation. Projection: Fastfood (O(D log D) per step, ~4 MB); a dense
P (D x 1500) would be 1.2 GB. Skips with a reason (exit 0) if the data is absent.

Usage:
    python benchmarks/intrinsic_dim_mnist.py [--epochs 15] [--dims 50 100 ...] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from embedlab.analysis import intrinsic_dimension_sweep
from embedlab.data import load_mnist

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist-t10k"
PAPER_D_INT90 = 750


def mlp() -> nn.Module:
    """The fully connected network of Li et al. (2018): 784-200-200-10, ReLU."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 200),
        nn.ReLU(),
        nn.Linear(200, 200),
        nn.ReLU(),
        nn.Linear(200, 10),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=MNIST)
    parser.add_argument(
        "--dims", type=int, nargs="+", default=[50, 100, 200, 300, 500, 750, 1000, 1500]
    )
    parser.add_argument("--projection", default="fastfood", choices=["dense", "sparse", "fastfood"])
    parser.add_argument("--epochs", type=int, default=15, help="epochs per subspace run")
    parser.add_argument("--baseline-epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.1, help="Adam lr on theta_d")
    parser.add_argument("--baseline-lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-train", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    if not args.data.exists():
        print(f"skip: MNIST not found at {args.data} (../shared/data is absent)")
        return 0
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # tiny Adam moments otherwise slow the CPU math

    data = load_mnist(args.data)
    order = np.random.default_rng(args.seed).permutation(len(data))
    tr, va = order[: args.n_train], order[args.n_train :]
    train = (data.x[tr], data.y[tr])
    valid = (data.x[va], data.y[va])
    print(
        f"MNIST t10k: {len(tr)} train / {len(va)} valid; MLP 784-200-200-10; "
        f"projection={args.projection}; epochs={args.epochs} (baseline {args.baseline_epochs}); "
        f"lr={args.lr} (baseline {args.baseline_lr}); batch={args.batch_size}; "
        f"threads={args.threads}"
    )
    start = time.perf_counter()
    result = intrinsic_dimension_sweep(
        mlp,
        train,
        valid,
        dims=args.dims,
        projection=args.projection,
        threshold=0.9,
        epochs=args.epochs,
        lr=args.lr,
        baseline_lr=args.baseline_lr,
        baseline_epochs=args.baseline_epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=not args.quiet,
    )
    total = time.perf_counter() - start

    target = result.threshold * result.baseline
    print(f"\nD = {result.n_params:,} parameters")
    print(
        f"baseline (full model) accuracy: {result.baseline:.4f}  ({result.baseline_seconds:.1f} s)"
    )
    print(f"target (90% of baseline):       {target:.4f}")
    print(f"{'d':>6}  {'accuracy':>8}  {'% of base':>9}  {'time s':>7}")
    for d, acc, sec in zip(result.dims, result.accuracies, result.seconds, strict=True):
        mark = "  <- d_int90" if d == result.d_int90 else ""
        print(f"{d:>6}  {acc:>8.4f}  {100 * acc / result.baseline:>8.1f}%  {sec:>7.1f}{mark}")
    found = result.d_int90 if result.d_int90 is not None else f"> {max(result.dims)}"
    print(f"d_int90 = {found}  (paper, full MNIST 60k: ~{PAPER_D_INT90})")
    print(f"wall time: {total:.1f} s")
    print(json.dumps({"benchmark": "intrinsic_dim_mnist", **result.to_dict(), "wall_s": total}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
