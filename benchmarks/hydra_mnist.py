"""Hydra cross-class pairs vs same-class Hydra vs SupCon on MNIST t10k: rank and linear probe.

Each loss trains one encoder on digits 0-4 (the t10k split of ``metric_mnist.py``), with
the same encoder, epochs, batch, lr and seed. Then, on the embeddings:

- ``erank``: effective rank (Roy & Vetterli) of the centred embeddings (collapse: low);
- ``probe seen``: logistic-regression accuracy on digits 0-4, fit on one half of the
  held-out part (10% of 0-4, never trained on), scored on the other half;
- ``probe unseen``: the same on digits 5-9 (never seen in training), half / half.

Usage:
    python benchmarks/hydra_mnist.py [--data ../shared/data/mnist-t10k] [--encoder mlp]
        [--epochs 3] [--seeds 0,1] [--losses supcon,hydra,hydra(cross=true)]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def probe(emb: np.ndarray, y: np.ndarray, seed: int) -> float:
    """Half / half logistic-regression accuracy (standardised features)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    idx = np.random.default_rng(seed).permutation(len(y))
    tr, te = idx[: len(y) // 2], idx[len(y) // 2 :]
    sc = StandardScaler().fit(emb[tr])
    clf = LogisticRegression(max_iter=2000).fit(sc.transform(emb[tr]), y[tr])
    return float(clf.score(sc.transform(emb[te]), y[te]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--encoder", default="mlp")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--losses", default="supcon;hydra;hydra(cross=true)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (MNIST t10k IDX files)")
        return 0

    import torch

    from embedlab.analysis import effective_rank
    from embedlab.bench.metric import load_labeled, metric_splits
    from embedlab.data import LabeledData
    from embedlab.losses import make_loss
    from embedlab.training.encoders import make_encoder
    from embedlab.training.metric import MetricTrainer, embed

    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    specs = args.losses.split(";")
    seen, unseen = metric_splits(load_labeled(f"mnist:{args.data}"))
    shape = tuple(int(s) for s in seen.x.shape[1:])
    print(
        f"mnist t10k: train on 0-4 ({len(seen)} incl. 10% held out), probe 0-4 held out and "
        f"5-9 ({len(unseen)}); {args.encoder} dim {args.dim}, {args.epochs} epochs, "
        f"batch {args.batch_size}, lr {args.lr}, seeds {seeds}",
        flush=True,
    )
    rows: list[dict[str, float | str | int]] = []
    start = time.perf_counter()
    for seed in seeds:
        held = np.random.default_rng(seed).random(len(seen)) < 0.1
        train = LabeledData(seen.x[~held], seen.y[~held])
        for spec in specs:
            t0 = time.perf_counter()
            enc = make_encoder(args.encoder, args.dim, shape, seed=seed)
            loss = make_loss(spec, dim=args.dim, n_classes=5)
            MetricTrainer(
                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed,
                progress=False,
            ).fit(enc, loss, train)  # fmt: skip
            e_seen = embed(enc, seen.x[held])
            e_unseen = embed(enc, unseen.x)
            row = {
                "loss": spec, "seed": seed,
                "erank_seen": effective_rank(e_seen, center=True),
                "erank_unseen": effective_rank(e_unseen, center=True),
                "probe_seen": probe(e_seen, seen.y[held], seed),
                "probe_unseen": probe(e_unseen, unseen.y, seed),
                "seconds": time.perf_counter() - t0,
            }  # fmt: skip
            rows.append(row)
            print(
                f"  seed {seed} {spec:<20} erank {row['erank_seen']:6.2f} / "
                f"{row['erank_unseen']:6.2f}  probe {row['probe_seen']:.4f} / "
                f"{row['probe_unseen']:.4f}  ({row['seconds']:.0f} s)",
                flush=True,
            )
    print(f"\nmean ± std over seeds {seeds} (dim {args.dim}; seen = 0-4 held out, unseen = 5-9):")
    keys = ("erank_seen", "erank_unseen", "probe_seen", "probe_unseen")
    print(f"{'loss':<22}" + "".join(f"{k:>20}" for k in keys))
    for spec in specs:
        sel = [r for r in rows if r["loss"] == spec]
        line = f"{spec:<22}"
        for k in keys:
            v = [float(r[k]) for r in sel]
            line += f"{np.mean(v):13.4f} ± {np.std(v):.4f}"
        print(line)
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
