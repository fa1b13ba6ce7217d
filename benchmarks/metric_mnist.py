"""Every registered metric-learning loss on MNIST t10k, unseen-class protocol, one table.

Same encoder (the small CNN), dim, epochs, batch, lr and seed for every loss: train on
digits 0-4 (10% held out to pick the epoch), leave-one-out retrieval and k-means on 5-9.
Baselines: the untrained CNN and raw pixels. Pair-input losses train on two augmented
views of each image (self-supervised); see MetricTrainer.

Usage:
    python benchmarks/metric_mnist.py [--data ../shared/data/mnist-t10k] [--epochs 5]
        [--losses triplet,supcon] [--threads 1] [--json out.jsonl]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--losses", default="", help="comma-separated specs (default: all)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (MNIST t10k IDX files)")
        return 0

    import torch

    from embedlab._registry import split_specs
    from embedlab.bench import write_records
    from embedlab.bench.metric import load_labeled, metric_splits, run_metric_bench
    from embedlab.losses import LOSSES

    if args.threads:
        torch.set_num_threads(args.threads)
    losses = split_specs(args.losses) if args.losses else LOSSES.names()
    train, test = metric_splits(load_labeled(f"mnist:{args.data}"))
    print(
        f"mnist t10k: {len(train)} train (0-4), {len(test)} test (5-9); cnn dim {args.dim}, "
        f"{args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, "
        f"{torch.get_num_threads()} torch thread(s)"
    )
    print(f"losses: {', '.join(losses)}")
    start = time.perf_counter()
    head = f"{'method':<16}{'P@1':>7}{'MAP@R':>7}{'R-P':>7}{'R@10':>7}{'NMI':>7}{'AMI':>7}"
    head += f"{'train_s':>9}{'samp/s':>8}  status"
    print(head)

    def show(r):  # type: ignore[no-untyped-def]
        m = r.metrics
        if r.status != "ok":
            print(f"{r.method:<16}{'':>42}{'':>17}  {r.status}: {r.error}")
            return
        print(
            f"{r.method:<16}{m['precision_at_1']:7.3f}{m['map_at_r']:7.3f}{m['r_precision']:7.3f}"
            f"{m['recall_at_10']:7.3f}{m['nmi']:7.3f}{m['ami']:7.3f}"
            f"{r.timing.get('train_s', 0.0):9.1f}{r.timing.get('samples_per_s', 0.0):8.0f}  ok",
            flush=True,
        )

    records = run_metric_bench(
        train, test, losses=losses, dim=args.dim, epochs=args.epochs,
        batch_size=args.batch_size, seeds=(args.seed,), progress=False, on_record=show,
    )  # fmt: skip
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        write_records(args.json, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
