"""Save / load time of a ~1 GB index: with and without verification, against plain numpy.

Builds a ``Flat`` index (float32 vectors in RAM) and a ``Binary,Rerank(Flat)`` index (codes
in RAM, vectors memory-mapped from the index folder) of ``--rows`` x ``--dim`` vectors,
saves each, then loads it with ``verify=True`` (every array hashed while it is read) and
``verify=False`` (headers, sizes, JSON checksums, schema and ids only). The peer is
``np.save`` / ``np.load`` of the same array (no checksum, no atomic swap). Each figure is the
best of ``--repeats`` runs, page cache warm.

Usage:
    python benchmarks/index_save_load.py [--rows 700000] [--dim 384] [--repeats 3]
"""

from __future__ import annotations

import argparse
import inspect
import shutil
import tempfile
from pathlib import Path

from index_vs_faiss import best_time  # a sibling script (benchmarks/ is on sys.path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=700_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the files")
    args = parser.parse_args()

    import numpy as np

    from embedlab.index import index_factory, load_index

    x = np.random.default_rng(0).standard_normal((args.rows, args.dim)).astype(np.float32)
    gb = x.nbytes / 1e9
    root = Path(tempfile.mkdtemp(dir=args.tmp, prefix="embedlab-saveload-"))
    has_verify = "verify" in inspect.signature(load_index).parameters
    has_overwrite = "overwrite" in inspect.signature(index_factory(4, "Flat").save).parameters
    print(f"{args.rows} x {args.dim} float32 = {gb:.2f} GB; best of {args.repeats}")
    try:
        npy = root / "plain.npy"
        t_np_save = best_time(lambda: np.save(npy, x), args.repeats)
        t_np_load = best_time(lambda: np.load(npy), args.repeats)
        print(f"numpy        save {t_np_save:6.2f} s   load {t_np_load:6.2f} s")
        for spec in ("Flat", "Binary,Rerank(Flat)"):
            index = index_factory(args.dim, spec, metric="ip")
            index.train(x[:10_000])
            index.add(x)
            path = root / spec.replace(",", "_").replace("(", "").replace(")", "")

            def save(index=index, path=path) -> None:  # type: ignore[no-untyped-def]
                if has_overwrite:
                    index.save(path, overwrite=True)
                else:
                    index.save(path)

            t_save = best_time(save, args.repeats)
            t_load = best_time(lambda path=path: load_index(path), args.repeats)
            line = f"{spec:20s} save {t_save:6.2f} s   load {t_load:6.2f} s (verified)"
            if has_verify:
                t_fast = best_time(lambda path=path: load_index(path, verify=False), args.repeats)
                line += f"   {t_fast:6.2f} s (verify=False)   ratio {t_load / t_fast:.2f}x"
            print(line)
            del index
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
