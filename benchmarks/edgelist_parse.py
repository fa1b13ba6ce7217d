"""Edge-list parse time: ``embedlab.graph.load_edgelist`` vs ``pandas.read_csv``.

Writes a 500k-edge integer edge list (tab-separated, 100k nodes) and times, best of 3:
the parser alone (bytes -> rows of ids), the whole loader (parse + id mapping + dedup +
symmetric CSR) and pandas' C parser alone (no graph). The first call (numba compile) is
not timed.

    python benchmarks/edgelist_parse.py [--edges 500000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edges", type=int, default=500_000)
    ap.add_argument("--nodes", type=int, default=100_000)
    args = ap.parse_args()
    import pandas as pd

    from embedlab.graph import load_edgelist
    from embedlab.graph._edgeparse import parse_fast

    rng = np.random.default_rng(0)
    edges = rng.integers(0, args.nodes, size=(args.edges, 2))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "edges.tsv"
        np.savetxt(path, edges, fmt="%d", delimiter="\t")

        load_edgelist(path)  # compile / load the numba kernel once

        def best(fn: object) -> float:
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                fn()  # type: ignore[operator]
                times.append(time.perf_counter() - t0)
            return min(times)

        raw = path.read_bytes()
        parse = best(lambda: parse_fast(raw))
        ours = best(lambda: load_edgelist(path))
        ref = best(lambda: pd.read_csv(path, sep="\t", header=None, dtype=np.int64))
        print(
            f"{args.edges:,} edges: pandas.read_csv {ref:.3f} s; embedlab parse (ids -> rows) "
            f"{parse:.3f} s ({parse / ref:.2f}x); load_edgelist (parse, dedup, symmetric CSR) "
            f"{ours:.3f} s ({ours / ref:.2f}x)"
        )


if __name__ == "__main__":
    main()
