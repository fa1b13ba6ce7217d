"""Train compressed tables on prepared Parquet shards: peak RSS, samples/s, AUC vs the oracle.

The second half of the issue-13 scale check (the first is ``prepare_criteo_synth.py``, which
writes the log, its oracle AUC and the shards). For each ``--methods`` entry this runs

    python -m embedlab.train ctr --data shards:DIR --method M --compression C ...

in a child process (``--nproc 2`` runs it under ``torchrun``) and prints one JSON line:
the child's peak RSS (``ru_maxrss`` of the process tree's largest process), training
samples/s, test AUC and logloss, the oracle's test AUC, and the table's bytes. Last, the
bytes a full float32 table of the same fields would need (plus Adam's two moments when
training), which is what compression saves.

Usage:
    python benchmarks/ctr_at_scale.py --shards /tmp/criteo20m/shards [--methods qr,tt,hash]
        [--compression 100] [--epochs 1] [--batch-size 4096] [--nproc 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def _run(cmd: list[str]) -> tuple[int, float, float]:
    """Return code, wall seconds and the peak RSS (MB) of the child tree's largest process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak_kb = max(usage.ru_maxrss, children)  # torchrun: its ranks are grandchildren
    return os.waitstatus_to_exitcode(status), wall, peak_kb / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=Path, required=True)
    ap.add_argument("--oracle", type=Path, default=None, help="LOG.oracle.json of the log")
    ap.add_argument("--methods", default="qr,tt,hash")
    ap.add_argument("--compression", type=float, default=100.0)
    ap.add_argument("--model", default="deepfm")
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--nproc", type=int, default=1)
    ap.add_argument("--max-train-seconds", type=float, default=0.0, help="0: a full epoch")
    ap.add_argument("--out", type=Path, default=Path("/tmp/ctr-at-scale"))
    args = ap.parse_args()

    from embedlab.data import CTRShards

    shards = CTRShards(args.shards)
    ids = sum(f.cardinality for f in shards.fields)
    full = ids * args.dim * 4
    oracle = None
    candidates = [args.oracle] if args.oracle else sorted(args.shards.parent.glob("*.oracle.json"))
    for path in candidates:
        if path and path.exists():
            oracle = json.loads(path.read_text()).get("oracle_auc_test")
    print(
        json.dumps(
            {
                "shards": str(args.shards),
                "rows": {s: shards.n_rows(s) for s in ("train", "valid", "test")},
                "fields": len(shards.fields),
                "ids": ids,
                "max_cardinality": max(f.cardinality for f in shards.fields),
                "full_table_mb": round(full / 2**20, 1),
                "full_table_with_adam_mb": round(3 * full / 2**20, 1),
                "oracle_test_auc": oracle,
            }
        ),
        flush=True,
    )
    launcher = (
        [sys.executable, "-m", "embedlab.train"]
        if args.nproc == 1
        else [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc-per-node={args.nproc}",
            "-m",
            "embedlab.train",
        ]
    )
    for method in args.methods.split(","):
        out = args.out / f"{method}-{args.compression:g}x-{args.nproc}p"
        cmd = [
            *launcher,
            "ctr",
            "--data",
            f"shards:{args.shards}",
            "--model",
            args.model,
            "--method",
            method,
            "--compression",
            f"{args.compression:g}",
            "--dim",
            str(args.dim),
            "--epochs",
            str(args.epochs),
            "--batch-size",
            str(args.batch_size),
            "-o",
            str(out),
            "--no-progress",
            "--max-train-seconds",
            str(args.max_train_seconds),
        ]
        if out.exists():
            import shutil

            shutil.rmtree(out)
        rc, wall, peak_mb = _run(cmd)
        row: dict[str, object] = {"method": method, "compression": args.compression, "rc": rc}
        if rc == 0:
            m = json.loads((out / "metrics.json").read_text())
            row |= {
                "nproc": args.nproc,
                "wall_s": round(wall, 1),
                "peak_rss_mb": round(peak_mb),
                "train_s": round(m["train_seconds"], 1),
                "samples_per_s": round(m["samples_per_second"]),
                "rows_trained": round(m["samples_per_second"] * m["train_seconds"]),
                "stop_reason": m.get("stop_reason"),
                "test_auc": round(m["test_auc"], 5),
                "test_logloss": round(m["test_logloss"], 5),
                "oracle_test_auc": oracle,
                "table_bytes": m.get("memory_bytes"),
            }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
