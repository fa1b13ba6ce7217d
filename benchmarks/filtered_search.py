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

``--graphs`` compares the two in-graph strategies on ``--graph-data``: ``synthetic`` (above)
or ``structured`` (``benchmarks/index_vs_faiss.py``'s 1,000 anisotropic clusters, 384-d,
normalised; where ACORN used to reach recall@10 0.82 unfiltered): the ACORN graph
(``strategy="acorn"``) against faiss' HNSW32 searched with the predicate as an
``IDSelectorBitmap`` (``strategy="hnsw"``, an ``HNSW32`` base), at selectivity 100% (a
filter every row passes), 10% and 1% (``--graph-selectivities``), each at several
``efSearch`` (``--efs``; for ``"hnsw"`` faiss' width is ``efSearch / selectivity``).
Recall@10 is against exact filtered search on ``--graph-queries`` queries, QPS = queries /
wall time of one ``search`` call (best of 2). "At equal QPS" reads the other strategy's
recall at the same QPS off its measured (QPS, recall) points (linear between them). Build
times of both graphs are printed (``nan`` when ``--graph-cache`` reused a saved index).
For one thread: ``OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/filtered_search.py ...``.

Usage:
    python benchmarks/filtered_search.py [--data DIR] [--n 100000] [--queries 1000]
        [--selectivities 0.5,0.1,0.01,0.001] [--skip-dbpedia] [--skip-synthetic]
        [--kernel-check] [--graphs] [--graph-selectivities 1,0.1,0.01]
        [--efs 16,32,64,128,256] [--graph-queries 500] [--graph-data structured]
        [--json OUT.jsonl]
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [
        len(set(f[f >= 0]) & set(t[t >= 0])) / max(1, int((t >= 0).sum()))
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits))


def recall_at_qps(qps: float, points: list[tuple[float, float]]) -> float | None:
    """Best recall reachable at ``qps`` on the (qps, recall) ``points``: points beaten by a
    faster one with higher recall are dropped, and the recall is linear in QPS between the
    two remaining points around ``qps``; ``None`` outside their QPS range."""
    frontier: list[tuple[float, float]] = []
    for q, r in sorted(points, reverse=True):  # fastest first: keep only recall gains
        if not frontier or r > frontier[-1][1]:
            frontier.append((q, r))
    frontier.reverse()  # slowest (best recall) first
    for (q0, r0), (q1, r1) in itertools.pairwise(frontier):
        if q0 <= qps <= q1:
            return r0 if q1 == q0 else r0 + (r1 - r0) * (qps - q0) / (q1 - q0)
    return None


_GRAPH_SELS = (1.0, 0.5, 0.3, 0.1, 0.03, 0.01, 0.001)


def graph_sweep(
    x: np.ndarray,
    q: np.ndarray,
    sels: list[float],
    efs: list[int],
    seed: int,
    cache: Path | None = None,
) -> list[dict[str, Any]]:
    """ACORN vs HNSW + IDSelector by selectivity and efSearch (see the module docstring)."""
    from embedlab.bench.retrieval_extra import (
        column_name,
        exact_filtered_search,
        selectivity_attributes,
    )
    from embedlab.index import FilteredIndex, index_factory, load_filtered
    from embedlab.index._acorn_kernels import n_threads

    k, dim = 10, x.shape[1]
    # one column per selectivity of a fixed list (plus any other asked for), so a cached index
    # serves every sweep of these selectivities
    columns = sorted(set(_GRAPH_SELS) | set(sels), reverse=True)
    attrs = selectivity_attributes(x.shape[0], columns, seed)
    hnsw_build = acorn_build = float("nan")
    if cache is not None and cache.exists():  # built by an earlier run on the same data
        index = load_filtered(cache)
        if index.ntotal != x.shape[0] or index.dim != dim or index.graph is None:
            raise SystemExit(f"{cache} holds another index; remove it or change --graph-cache")
    else:
        index = FilteredIndex(
            dim,
            base=index_factory(dim, "HNSW32"),
            strategy="hnsw",
            columns={column_name(s): "categorical" for s in columns},
            seed=seed,
        )
        t0 = time.perf_counter()
        index.add(x, attrs=attrs)
        hnsw_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        index.build_graph()
        acorn_build = time.perf_counter() - t0
        if cache is not None:
            index.save(cache)
    print(
        f"\n## ACORN vs HNSW + IDSelector: {x.shape[0]} x {dim}, {q.shape[0]} queries, k={k}, "
        f"{n_threads()} threads; "
        f"build: HNSW32 {hnsw_build:.1f} s, ACORN (m=32, gamma=4) {acorn_build:.1f} s"
    )
    rng = np.random.default_rng(seed + 2)
    rows: list[dict[str, Any]] = []
    for s in sels:
        col = column_name(s)
        values = np.asarray(rng.integers(0, max(1, round(1 / s)), size=q.shape[0]), np.int64)
        filters = [{col: int(v)} for v in values]
        truth = exact_filtered_search(x, q, attrs[col], values, k)
        for strategy in ("acorn", "hnsw"):
            index.search(q[:8], k, filter=filters[:8], strategy=strategy)  # warm up
            for ef in efs:
                times = []
                for _ in range(2):
                    t0 = time.perf_counter()
                    _, ids = index.search(q, k, filter=filters, strategy=strategy, efSearch=ef)
                    times.append(time.perf_counter() - t0)
                rows.append(
                    {
                        "selectivity": s,
                        "strategy": strategy,
                        "efSearch": ef,
                        "recall@10": _recall(ids, truth),
                        "qps": q.shape[0] / min(times),
                    }
                )
    for r in rows:
        other = "hnsw" if r["strategy"] == "acorn" else "acorn"
        pts = [
            (o["qps"], o["recall@10"])
            for o in rows
            if o["strategy"] == other and o["selectivity"] == r["selectivity"]
        ]
        r["other_recall_at_equal_qps"] = recall_at_qps(r["qps"], pts)
    head = (
        f"{'selectivity':>11} {'strategy':>8} {'efSearch':>8} {'recall@10':>9} {'QPS':>8} "
        f"{'other@QPS':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        other = r["other_recall_at_equal_qps"]
        print(
            f"{r['selectivity']:>11.0%} {r['strategy']:>8} {r['efSearch']:>8} "
            f"{r['recall@10']:>9.3f} {r['qps']:>8.0f} {'-' if other is None else f'{other:.3f}':>9}"
        )
    for r in rows:
        r.update(hnsw_build_s=hnsw_build, acorn_build_s=acorn_build, n=int(x.shape[0]))
    return rows


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
    parser.add_argument("--graphs", action="store_true")
    parser.add_argument("--graph-selectivities", default="1,0.1,0.01")
    parser.add_argument("--efs", default="16,32,64,128,256")
    parser.add_argument("--graph-queries", type=int, default=500)
    parser.add_argument("--graph-data", choices=["synthetic", "structured"], default="synthetic")
    parser.add_argument("--graph-json", type=Path, default=None)
    parser.add_argument("--graph-cache", type=Path, default=None, help="save / reuse the index")
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
    if args.graphs:
        if args.graph_data == "structured":
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from index_vs_faiss import structured

            d = structured(args.n + args.graph_queries, 384, args.seed)
            d /= np.linalg.norm(d, axis=1, keepdims=True)
            q, x = d[: args.graph_queries], d[args.graph_queries :]
        else:
            x, q = synthetic(args.n, args.graph_queries, seed=args.seed)
        g_sels = [float(s) for s in args.graph_selectivities.split(",")]
        efs = [int(e) for e in args.efs.split(",")]
        rows = graph_sweep(x, q, g_sels, efs, args.seed, args.graph_cache)
        if args.graph_json:
            import json

            args.graph_json.write_text(json.dumps(rows, indent=1))
    if args.kernel_check:
        kernel_check()
    if args.json:
        write_records(args.json, records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
