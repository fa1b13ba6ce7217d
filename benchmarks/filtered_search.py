"""Filtered search: pre- vs post-filtering vs the ACORN graph vs the planner, by selectivity.

Data:
- ``dbpedia``: the DBpedia-entity documents of ``../shared/data/beir-mini/dbpedia`` embedded
  with MiniLM (384-d, cosine; cached), 1,000 held-out documents as queries, the rest
  (~4,000) indexed;
- ``synthetic``: ``--n`` (100,000) x 384 vectors on a clustered low-dimensional manifold
  (a 24-d mixture of 50 Gaussians mapped linearly to 384-d plus isotropic noise, normalised;
  text embeddings look like this more than isotropic Gaussian clusters do), 1,000 queries
  from the same distribution. The strategies only separate at this size.

Attributes: one categorical column per selectivity ``s``, uniform over ``round(1/s)``
values, independent of the vectors; each query filters on a random value of the column, so
a batch holds many different filters (as in a real workload) and the planner decides per
query.

Each strategy answers the whole batch in one call (``FilteredIndex.search(q, 10, filter=
[...], strategy=...)``); recall@10 is against exact filtered search (brute force on each
filter's rows), QPS = queries / wall time of that call on the machine's cores. ``auto`` is
the planner; the last column says what it chose. The sweep itself is
``embedlab.bench.retrieval_extra.run_filtered_bench`` (also ``embedlab bench retrieval
--filters``); this script adds the data sets, the printout and the kernel check.

How the planner's defaults were set (``FilteredIndex``): ``post_min_selectivity=0.3`` and
``acorn_min_selectivity=0.02`` / ``pre_max_rows=2000`` come from the synthetic sweep with
``--selectivities 0.5,0.3,0.2,0.1,0.05,0.02,0.01,0.001``: see the module docstring of
``embedlab.index.filtered`` and the numbers in the closing note of the task.

``--kernel-check`` also times the graph search kernel compiled with numba against the same
kernel run as plain Python (``NUMBA_DISABLE_JIT=1`` in a subprocess): the measured reason
for the numba dependency.

Usage:
    python benchmarks/filtered_search.py [--data DIR] [--n 100000] [--queries 1000]
        [--selectivities 0.5,0.1,0.01,0.001] [--skip-dbpedia] [--skip-synthetic]
        [--kernel-check] [--json OUT.jsonl]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from embedlab.bench import BenchRecord, write_records
from embedlab.bench.retrieval_extra import run_filtered_bench
from embedlab.data.retrieval import RetrievalData

ROOT = Path(__file__).resolve().parents[1]
DBPEDIA = ROOT.parent / "shared" / "data" / "beir-mini" / "dbpedia"


def synthetic(n: int, n_q: int, dim: int = 384, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent, comps = 24, 50
    means = rng.standard_normal((comps, latent))
    w = rng.standard_normal((latent, dim)) / np.sqrt(latent)

    def draw(m: int) -> np.ndarray:
        z = means[rng.integers(0, comps, m)] + 0.6 * rng.standard_normal((m, latent))
        v = z @ w + 0.15 * rng.standard_normal((m, dim))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    return draw(n), draw(n_q)


def run_dataset(
    name: str, x: np.ndarray, q: np.ndarray, sels: list[float], seed: int
) -> list[BenchRecord]:
    """The sweep of ``embedlab.bench.retrieval_extra.run_filtered_bench``, printed."""
    data = RetrievalData(
        name, x, [str(i) for i in range(x.shape[0])], q, [f"q{i}" for i in range(q.shape[0])]
    )
    records = run_filtered_bench(data, sels, k=10, seed=seed)
    build_s = records[0].timing["build_s"] if records else 0.0
    ram = records[0].params["ram_bytes_total"] / 2**20 if records else 0.0
    print(
        f"\n## {name}: {x.shape[0]} x {x.shape[1]} indexed, {q.shape[0]} queries, k=10; "
        f"add + ACORN build {build_s:.1f} s, memory {ram:.1f} MiB"
    )
    header = f"{'selectivity':>11} {'strategy':>8} {'recall@10':>9} {'QPS':>9}  planner chose"
    print(header)
    print("-" * len(header))
    for rec in records:
        planner = rec.params.get("planner", {})
        chose = ", ".join(f"{k} {v}" for k, v in planner.items())
        print(
            f"{rec.params['selectivity']:>11.3%} {rec.params['strategy']:>8} "
            f"{rec.metrics['recall@10']:>9.3f} {rec.timing['qps']:>9.0f}  {chose}"
        )
    return records


_KERNEL = """
import os, sys, time, numpy as np
sys.path.insert(0, {src!r})
from embedlab.index.acorn import AcornGraph
rng = np.random.default_rng(0)
x = rng.standard_normal(({n}, 384)).astype(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
g = AcornGraph(384, m=16, gamma=8)
g.extend(x)
mask = rng.random({n}) < 0.1
q = x[:{nq}] + 0.01
g.search(x, q[:1], 10, mask=mask)
t = time.perf_counter()
g.search(x, q, 10, mask=mask)
print((time.perf_counter() - t) / {nq})
"""


def kernel_check(n: int = 2000, n_q: int = 20) -> None:
    """Seconds per filtered graph query, numba-compiled vs the same code as plain Python."""
    code = _KERNEL.format(src=str(ROOT / "src"), n=n, nq=n_q)
    out = {}
    for label, env in (("numba", {}), ("python", {"NUMBA_DISABLE_JIT": "1"})):
        res = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        )
        out[label] = float(res.stdout.strip().splitlines()[-1])
    print(
        f"\n## graph search kernel, {n} x 384, 10% filter, ef=64: numba "
        f"{out['numba'] * 1e3:.2f} ms/query, plain Python {out['python'] * 1e3:.1f} ms/query "
        f"({out['python'] / out['numba']:.0f}x)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DBPEDIA)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--selectivities", default="0.5,0.1,0.01,0.001")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-dbpedia", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--kernel-check", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sels = [float(s) for s in args.selectivities.split(",")]
    records: list[BenchRecord] = []
    if not args.skip_dbpedia:
        if not args.data.exists():
            print(f"skipping dbpedia: {args.data} not found")
        else:
            from embedlab.data.retrieval import load_retrieval

            data = load_retrieval(f"beir:{args.data}", seed=args.seed, n_holdout=args.queries)
            assert data.holdout is not None
            records += run_dataset("dbpedia", data.corpus, data.holdout, sels, args.seed)
    if not args.skip_synthetic:
        x, q = synthetic(args.n, args.queries, seed=args.seed)
        records += run_dataset(f"synthetic-{args.n // 1000}k", x, q, sels, args.seed)
    if args.kernel_check:
        kernel_check()
    if args.json:
        write_records(args.json, records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
