"""A CTR grid run sequentially and as Ray tasks: wall-time ratio, identical AUCs per run.

The data is loaded once per seed and shared by both runs. The sequential grid runs in this
process, each run with --seq-threads threads (default: --cpus-per-run; 0: torch's
default); the Ray grid starts a local cluster on every CPU (timed apart) and runs each
(method, compression, seed) as a task of --cpus-per-run CPUs and threads. Identity is
checked on every record field but the timings; it holds for equal thread counts (float
sums in parallel depend on the count: 2 threads vs 1 moves Frappe AUCs by ~1e-6).

Usage:
    python benchmarks/ray_grid.py [--data frappe:../shared/data/frappe]
        [--methods full,hash,qr,tt,dhe | all] [--compression 10,100] [--seed 0]
        [--epochs 2] [--cpus-per-run 1] [--json out.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "frappe"


def _without_timing(record: Any) -> dict[str, Any]:
    """The record without its timings: ``timing`` and each phase's ``*_seconds``."""
    data: dict[str, Any] = json.loads(record.to_json())
    data.pop("timing")
    for phase in data.get("params", {}).get("phases") or []:
        for key in [k for k in phase if k.endswith("_seconds")]:
            phase.pop(key)
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=f"frappe:{DEFAULT_DATA}")
    parser.add_argument("--model", default="deepfm")
    parser.add_argument("--methods", default="full,hash,qr,tt,dhe")
    parser.add_argument("--compression", default="10,100")
    parser.add_argument("--seed", default="0", help="comma-separated seeds")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--cpus-per-run", type=int, default=1)
    parser.add_argument("--seq-threads", type=int, default=None, help="0: torch's default")
    parser.add_argument("--json", type=Path, default=None, help="append both record sets")
    args = parser.parse_args()
    name, _, path = args.data.partition(":")
    if path and not Path(path).exists():
        print(f"skipped: {path} not found")
        return 0

    import ray
    import torch

    from embedlab._registry import split_specs
    from embedlab.bench import (
        CTRBenchConfig,
        LocalEngine,
        RayEngine,
        RecordWriter,
        run_ctr_bench,
    )
    from embedlab.data import CTRSplits, load_ctr
    from embedlab.tables import TABLES

    seeds = [int(s) for s in args.seed.split(",")]
    methods = list(TABLES) if args.methods == "all" else split_specs(args.methods)
    config = CTRBenchConfig(
        model=args.model,
        methods=methods,
        compressions=[float(c) for c in args.compression.split(",")],
        dim=args.dim,
        epochs=args.epochs,
        seeds=seeds,
        progress=False,
    )
    t0 = time.perf_counter()
    splits = {s: load_ctr(args.data, seed=s) for s in seeds}
    load_s = time.perf_counter() - t0

    def load(seed: int) -> CTRSplits:
        return splits[seed]

    n_runs = len(config.runs())
    print(
        f"{name}: {len(splits[seeds[0]].train):,} train rows; {n_runs} runs "
        f"({len(methods)} methods x {len(config.compressions)} compressions x {len(seeds)} "
        f"seeds, full once per seed), {args.epochs} epochs; data loaded in {load_s:.1f} s",
        flush=True,
    )
    threads = args.cpus_per_run if args.seq_threads is None else args.seq_threads
    local = LocalEngine(threads=threads or None)
    t0 = time.perf_counter()
    sequential = run_ctr_bench(load, config, engine=local)
    seq_s = time.perf_counter() - t0
    shown = threads or f"torch's default, {torch.get_num_threads()}"
    print(f"sequential: {seq_s:.1f} s ({shown} threads per run)", flush=True)

    t0 = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t0
    cpus = int(ray.cluster_resources().get("CPU", 0))
    t0 = time.perf_counter()
    on_ray = run_ctr_bench(load, config, engine=RayEngine(cpus_per_run=args.cpus_per_run))
    ray_s = time.perf_counter() - t0
    ray.shutdown()
    print(
        f"ray: {ray_s:.1f} s on {cpus} CPUs, {args.cpus_per_run} per run "
        f"(+ {init_s:.1f} s to start the cluster)"
    )
    print(f"wall-time ratio sequential / ray: {seq_s / ray_s:.2f}x "
          f"({seq_s / (ray_s + init_s):.2f}x with the cluster start)")  # fmt: skip

    mismatched = 0
    print(f"{'method':<12}{'c':>6}{'seed':>6}{'auc sequential':>17}{'auc ray':>12}  same")
    for a, b in zip(sequential, on_ray, strict=True):
        same = _without_timing(a) == _without_timing(b)
        mismatched += not same
        auc_a, auc_b = a.metrics.get("auc"), b.metrics.get("auc")
        shown = [f"{v:.6f}" if v is not None else a.status for v in (auc_a, auc_b)]
        print(f"{a.method:<12}{a.compression:>6g}{a.seed:>6}{shown[0]:>17}{shown[1]:>12}  {same}")
    print(f"identical records (timings aside): {n_runs - mismatched} of {n_runs}")
    if args.json is not None:
        out = RecordWriter(args.json)
        out.write_header(" ".join(["python", *sys.argv]))
        for rec in [*sequential, *on_ray]:
            out.write(rec)
    return 1 if mismatched else 0


if __name__ == "__main__":
    raise SystemExit(main())
