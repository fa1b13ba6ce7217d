"""``torchrun --nproc-per-node N`` vs one process: CTR training samples/s and test AUC.

Both runs train the same model on the same synthetic planted-FM log with the same GLOBAL
batch (DDP ranks take ``batch // N`` rows each); torchrun gives each rank one thread
(``OMP_NUM_THREADS=1``); the single process runs twice, with every core and with one
thread. Prints one JSON line.

Usage:
    python benchmarks/ddp_ctr.py [--rows 500000] [--epochs 1] [--batch 4096] [--nproc 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CARDINALITIES = (100_000, 50_000, 20_000, 10_000, 5000, 1000, 500, 100, 20, 5)


def worker(args: argparse.Namespace) -> None:
    """One rank (or the single process): train and let rank 0 write ``args.out``."""
    from embedlab.data import make_ctr
    from embedlab.training import MemorySource
    from embedlab.training.ctr_run import CTRRunConfig, run_ctr

    splits = make_ctr(args.rows, CARDINALITIES, seed=0).split(seed=0)
    config = CTRRunConfig(
        data=f"make_ctr({args.rows}, {CARDINALITIES})",
        model=args.model,
        method=args.method,
        compression=args.compression,
        epochs=args.epochs,
        batch_size=args.batch,
        patience=None,
    )
    run_ctr(config, args.out, progress=False, source=MemorySource(splits))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4096, help="global batch")
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--model", default="deepfm(hidden=256-128)")
    parser.add_argument("--method", default="qr")
    parser.add_argument("--compression", type=float, default=100.0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0

    root = Path(tempfile.mkdtemp(prefix="ddp_ctr-"))
    common = [f"--rows={args.rows}", f"--epochs={args.epochs}", f"--batch={args.batch}"]
    common += [f"--model={args.model}", f"--method={args.method}"]
    common += [f"--compression={args.compression}", "--worker"]
    script = str(Path(__file__).resolve())
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    runs = {
        "one_process": ([sys.executable, script, *common], {}),
        "one_process_1_thread": ([sys.executable, script, *common], {"OMP_NUM_THREADS": "1"}),
        "torchrun": (
            [torchrun, "--standalone", f"--nproc-per-node={args.nproc}", script, *common],
            {},
        ),
    }
    result: dict[str, object] = {
        "benchmark": "ddp_ctr",
        "rows": args.rows,
        "global_batch": args.batch,
        "epochs": args.epochs,
        "model": args.model,
        "method": f"{args.method}@{args.compression:g}x",
        "cpus": os.cpu_count(),
    }
    for name, (cmd, env) in runs.items():
        start = time.perf_counter()
        subprocess.run([*cmd, f"--out={root / name}"], check=True, env={**os.environ, **env})
        wall = time.perf_counter() - start
        metrics = json.loads((root / name / "metrics.json").read_text())
        result[name] = {
            "world_size": metrics["world_size"],
            "samples_per_s": round(metrics["samples_per_second"]),
            "train_s": round(metrics["train_seconds"], 1),
            "wall_s": round(wall, 1),
            "test_auc": round(metrics["test_auc"], 5),
            "test_logloss": round(metrics["test_logloss"], 5),
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
