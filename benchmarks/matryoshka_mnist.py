"""Matryoshka on MNIST t10k: one encoder's nested prefixes vs encoders trained per dim.

Unseen-class protocol of ``metric_mnist.py``: the small CNN trained on digits 0-4 (10% held
out to pick the epoch), leave-one-out retrieval (cosine, so each prefix is re-normalised)
on 5-9. Per seed:

- ``matryoshka``: one dim-64 encoder trained with ``MatryoshkaLoss(base, dims=(8, 16, 32,
  64))`` (the base loss summed over the re-normalised prefixes), evaluated on each prefix;
- ``separate``: one encoder per dim d in (8, 16, 32, 64) trained with the base loss alone;
- ``truncated``: the separate dim-64 encoder's prefixes (what Matryoshka training fixes).

Same CNN architecture (only the output dim differs), epochs, batch, lr and seed everywhere.

Usage:
    python benchmarks/matryoshka_mnist.py [--data ../shared/data/mnist-t10k] [--base supcon]
        [--epochs 5] [--seeds 0,1,2] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"
DIMS = (8, 16, 32, 64)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--base", default="supcon", help="base loss spec")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (MNIST t10k IDX files)")
        return 0

    import torch

    from embedlab.bench.metric import load_labeled, metric_splits
    from embedlab.data import LabeledData
    from embedlab.evaluate import retrieval_metrics
    from embedlab.losses import MatryoshkaLoss, make_loss
    from embedlab.training.encoders import make_encoder
    from embedlab.training.metric import MetricTrainer, embed

    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    train, test = metric_splits(load_labeled(f"mnist:{args.data}"))
    test_y = np.searchsorted(np.unique(test.y), test.y)
    n_classes = int(np.unique(train.y).size)
    shape = tuple(int(s) for s in train.x.shape[1:])
    print(
        f"mnist t10k: {len(train)} train (0-4), {len(test)} test (5-9); cnn, base {args.base}, "
        f"dims {DIMS}, {args.epochs} epochs, batch {args.batch_size}, lr {args.lr}, "
        f"seeds {seeds}, {torch.get_num_threads()} torch thread(s)",
        flush=True,
    )

    def fit(
        dim: int, loss: torch.nn.Module, seed: int, parts: tuple[LabeledData, ...]
    ) -> np.ndarray:
        encoder = make_encoder("cnn", dim, shape, seed=seed)
        trainer = MetricTrainer(
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed, progress=False
        )
        trainer.fit(encoder, loss, *parts)
        return embed(encoder, test.x)

    rows: list[dict[str, float | str | int]] = []

    def add(method: str, seed: int, emb: np.ndarray, dims: tuple[int, ...]) -> None:
        for d in dims:
            m = retrieval_metrics(emb[:, :d], test_y, k=(1,))
            rows.append(
                {"method": method, "seed": seed, "dim": d,
                 "precision_at_1": m["precision_at_1"], "map_at_r": m["map_at_r"]}
            )  # fmt: skip
            print(
                f"  seed {seed} {method:<11} d={d:<3} P@1 {m['precision_at_1']:.3f}  "
                f"MAP@R {m['map_at_r']:.3f}",
                flush=True,
            )

    start = time.perf_counter()
    for seed in seeds:
        mask = np.random.default_rng(seed).random(len(train)) < 0.1  # metric bench's holdout
        parts = (
            LabeledData(train.x[~mask], train.y[~mask]),
            LabeledData(train.x[mask], train.y[mask]),
        )
        mrl = MatryoshkaLoss(args.base, dims=DIMS, dim=DIMS[-1], n_classes=n_classes)
        add("matryoshka", seed, fit(DIMS[-1], mrl, seed, parts), DIMS)
        for d in DIMS:
            emb = fit(d, make_loss(args.base, dim=d, n_classes=n_classes), seed, parts)
            add("separate", seed, emb, (d,))
            if d == DIMS[-1]:
                add("truncated", seed, emb, DIMS)

    print(f"\nP@1 / MAP@R at each dim, mean ± std over seeds {seeds}:")
    methods = ("matryoshka", "separate", "truncated")
    print(f"{'dim':<5}" + "".join(f"{m + ' P@1':>19}{'MAP@R':>15}" for m in methods))
    for d in DIMS:
        line = f"{d:<5}"
        for method in methods:
            sel = [r for r in rows if r["method"] == method and r["dim"] == d]
            p1 = [float(r["precision_at_1"]) for r in sel]
            mr = [float(r["map_at_r"]) for r in sel]
            line += f"{np.mean(p1):11.3f} ± {np.std(p1):.3f}{np.mean(mr):9.3f} ± {np.std(mr):.3f}"
        print(line)
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
