"""Training throughput of DeepFM with each embedding-table method, as a ratio to the full table.

`embedlab bench ctr` records samples/s of each run against the full table's run
at the start of the grid; on a shared machine, load that changes during the
grid biases those ratios. This script measures the same ratio robustly: for
each (method, compression) it alternates one-epoch training runs of the full
table and of the method on the same rows with the real ``CTRTrainer``
(warm-up excluded) and reports the median of the per-pair ratios.

Usage:
    python benchmarks/table_throughput.py --data frappe:../shared/data/frappe \
        --methods hash,qr,ue,mde,tt,dhe,robe,int8,int16 --compression 10,100 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from typing import Any

import torch

from embedlab import BudgetError
from embedlab.data import CTRDataset, load_ctr
from embedlab.models import make_model
from embedlab.tables import make_table
from embedlab.training import CTRTrainer


def _samples_per_s(
    spec: str, compression: float, train: CTRDataset, args: argparse.Namespace
) -> float:
    table = make_table(spec, train.fields, args.dim, compression=compression, seed=args.seed)
    model = make_model("deepfm", table, seed=args.seed)
    trainer = CTRTrainer(
        epochs=1, batch_size=args.batch_size, seed=args.seed, progress=False, patience=None
    )
    return trainer.fit(model, train, None).samples_per_second


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    splits = load_ctr(args.data, seed=args.seed)
    train = splits.train
    if args.rows and args.rows < len(train):
        train = train.subset(torch.arange(args.rows).numpy())
    results: list[dict[str, Any]] = []
    for spec in args.methods.split(","):
        for compression in (float(c) for c in args.compression.split(",")):
            try:
                make_table(spec, train.fields, args.dim, compression=compression)
            except BudgetError as exc:
                results.append({"method": spec, "compression": compression, "error": str(exc)})
                print(f"{spec:>6} @ {compression:g}x: infeasible", flush=True)
                continue
            _samples_per_s("full", 1.0, train, args)  # warm-up
            _samples_per_s(spec, compression, train, args)
            full_sps: list[float] = []
            method_sps: list[float] = []
            for _ in range(args.repeats):
                full_sps.append(_samples_per_s("full", 1.0, train, args))
                method_sps.append(_samples_per_s(spec, compression, train, args))
            ratios = [m / f for m, f in zip(method_sps, full_sps, strict=True)]
            row = {
                "method": spec,
                "compression": compression,
                "ratio_median": statistics.median(ratios),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                "method_samples_per_s_median": statistics.median(method_sps),
                "full_samples_per_s_median": statistics.median(full_sps),
            }
            results.append(row)
            print(
                f"{spec:>6} @ {compression:g}x: {row['ratio_median']:.2f} x full "
                f"(range {row['ratio_min']:.2f}-{row['ratio_max']:.2f}; "
                f"{row['method_samples_per_s_median']:,.0f} vs "
                f"{row['full_samples_per_s_median']:,.0f} samples/s)",
                flush=True,
            )
    return results


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", default="synthetic")
    p.add_argument("--methods", default="hash,qr,ue,mde,tt,dhe,robe,int8,int16")
    p.add_argument("--compression", default="10,100")
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--rows", type=int, default=20_000, help="training rows per timed run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    results = measure(args)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=2)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
