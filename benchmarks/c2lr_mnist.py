"""C²LR (weighted SimCLR, then MI-Mix) vs MI-Mix alone vs weighted SimCLR alone on MNIST t10k.

Self-supervised: no labels in training (random batches; positives are two augmentations of
one image, MI-Mix mixes at the input, the only entry point the encoders here expose).
Trained on digits 0-4 (90%), evaluated by leave-one-out retrieval (cosine) precision@1 and
MAP@R on the held-out 10% of 0-4 and on the unseen digits 5-9. Same encoder, epochs,
batch, lr, temperature and seed for every arm; C²LR spends ``switch`` of the epochs
(the authors' 1/3) in phase I.

Usage:
    python benchmarks/c2lr_mnist.py [--data ../shared/data/mnist-t10k] [--epochs 3]
        [--seeds 0,1] [--temperature 0.05]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--encoder", default="mlp")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--temperature", type=float, default=0.05)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (MNIST t10k IDX files)")
        return 0

    import torch

    from embedlab.bench.metric import load_labeled, metric_splits
    from embedlab.data import LabeledData
    from embedlab.evaluate import retrieval_metrics
    from embedlab.losses import make_loss
    from embedlab.training.encoders import make_encoder
    from embedlab.training.metric import MetricTrainer, embed

    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    t = args.temperature
    arms = {
        "c2lr": f"c2lr(temperature={t})",
        "mimix": f"mimix(temperature={t})",
        "weighted simclr": f"c2lr(switch=1.0, temperature={t})",
    }
    seen, unseen = metric_splits(load_labeled(f"mnist:{args.data}"))
    shape = tuple(int(s) for s in seen.x.shape[1:])
    print(
        f"mnist t10k, self-supervised on 0-4: {args.encoder} dim {args.dim}, {args.epochs} "
        f"epochs, batch {args.batch_size}, lr {args.lr}, T {t}, seeds {seeds}",
        flush=True,
    )
    rows: list[dict[str, float | str | int]] = []
    start = time.perf_counter()
    for seed in seeds:
        held = np.random.default_rng(seed).random(len(seen)) < 0.1
        train = LabeledData(seen.x[~held], seen.y[~held])
        for arm, spec in arms.items():
            t0 = time.perf_counter()
            enc = make_encoder(args.encoder, args.dim, shape, seed=seed)
            res = MetricTrainer(
                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed,
                sampler="random", progress=False,
            ).fit(enc, make_loss(spec), train)  # fmt: skip
            m_seen = retrieval_metrics(embed(enc, seen.x[held]), seen.y[held], k=(1,))
            m_unseen = retrieval_metrics(embed(enc, unseen.x), unseen.y, k=(1,))
            row = {
                "arm": arm, "seed": seed,
                "seen_p1": m_seen["precision_at_1"], "seen_map_at_r": m_seen["map_at_r"],
                "unseen_p1": m_unseen["precision_at_1"], "unseen_map_at_r": m_unseen["map_at_r"],
                "losses": [round(h["train_loss"], 4) for h in res.history],
            }  # fmt: skip
            rows.append(row)  # type: ignore[arg-type]
            print(
                f"  seed {seed} {arm:<16} seen P@1 {row['seen_p1']:.4f} MAP@R "
                f"{row['seen_map_at_r']:.4f}  unseen P@1 {row['unseen_p1']:.4f} MAP@R "
                f"{row['unseen_map_at_r']:.4f}  epoch losses {row['losses']} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    print(f"\nmean ± std over seeds {seeds}:")
    keys = ("seen_p1", "seen_map_at_r", "unseen_p1", "unseen_map_at_r")
    print(f"{'arm':<18}" + "".join(f"{k:>18}" for k in keys))
    for arm in arms:
        sel = [r for r in rows if r["arm"] == arm]
        line = f"{arm:<18}"
        for k in keys:
            v = [float(r[k]) for r in sel]
            line += f"{np.mean(v):11.4f} ± {np.std(v):.4f}"
        print(line)
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
