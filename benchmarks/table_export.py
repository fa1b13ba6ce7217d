"""Exported tables: file bytes vs ``memory_bytes()``, torch.export, and inference speed.

For every registered method at each compression, on the fields of ``embedlab.data.make_ctr``
(10 fields, 8880 ids, dim 16): the table is *trained* (``CTRTrainer(epochs=1)``, FM model,
on a small planted-FM log, so multi-phase tables run all their phases), exported, and
loaded back. Printed per method: the exported file's bytes, ``memory_bytes()``, their
ratio, whether the outputs are bit-identical, whether ``torch.export.export`` traces the
exported module (and the training table with ``set_validation(False)``), and inference
samples/s (rows of ids per second, eval mode, no grad, best of ``--repeats``) of the
exported module against the training table on the same batch.

Usage:
    python benchmarks/table_export.py --compression 10,100 --batch 4096
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch
from index_vs_faiss import best_time

from embedlab import BudgetError
from embedlab.data import make_ctr
from embedlab.models import make_model
from embedlab.tables import TABLES, load_exported, make_table
from embedlab.training import CTRTrainer


def traces(module: torch.nn.Module, ids: torch.Tensor) -> str:
    try:
        program = torch.export.export(module, (ids,))
        ok = torch.equal(program.module()(ids), module(ids))
        return "yes" if ok else "differs"
    except Exception as exc:  # report, do not stop the grid
        return f"no ({type(exc).__name__})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compression", default="10,100")
    parser.add_argument("--methods", default=",".join(TABLES.names()))
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the training log")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = make_ctr(args.rows, seed=0).split(seed=0)
    gen = torch.Generator().manual_seed(1)
    ids = torch.stack(
        [torch.randint(0, f.cardinality, (args.batch,), generator=gen) for f in data.fields], 1
    )
    head = (
        f"{'method':10s} {'x':>4s} {'file B':>8s} {'memory B':>9s} {'ratio':>6s} {'same':>5s} "
        f"{'export(exported)':>17s} {'export(training)':>22s} {'exp/s':>10s} {'train/s':>10s}"
    )
    print(f"fields {[f.cardinality for f in data.fields]}, dim 16, batch {args.batch}")
    print(head)
    out_dir = Path(tempfile.mkdtemp())
    for name in args.methods.split(","):
        for c in [1.0] if name == "full" else [float(x) for x in args.compression.split(",")]:
            try:
                table = make_table(name, data.fields, 16, compression=c, seed=0)
            except BudgetError:
                print(f"{name:10s} {c:4g} cannot reach this compression")
                continue
            trainer = CTRTrainer(epochs=1, batch_size=1024, progress=False)
            trainer.fit(make_model("fm", table), data.train, data.valid)
            table.eval()
            path = table.export(out_dir / f"{name}-{c:g}.safetensors")
            module = load_exported(path)
            size, mem = os.path.getsize(path), table.memory_bytes()
            with torch.no_grad():
                same = torch.equal(module(ids).view(torch.int32), table(ids).view(torch.int32))
                t_exp = best_time(lambda m=module: m(ids), args.repeats)
                t_train = best_time(lambda t=table: t(ids), args.repeats)
                exported_ok = traces(module, ids)
                training_ok = traces(table.set_validation(False), ids)
            print(
                f"{name:10s} {c:4g} {size:8d} {mem:9d} {size / mem:6.3f} {same!s:>5s} "
                f"{exported_ok:>17s} {training_ok:>22s} {args.batch / t_exp:10.0f} "
                f"{args.batch / t_train:10.0f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
