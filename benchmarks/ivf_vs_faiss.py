"""``IVF{nlist},PQ{m},Rerank(Flat)`` (or ``IVF{nlist},Binary,Rerank(Flat)`` with ``--code
binary``) against faiss ``IndexIVFPQ`` + ``IndexRefineFlat``.

Data: a seeded Gaussian mixture (``--centres`` overlapping anisotropic clusters, see
:func:`mixture`), ``--n`` x ``--dim`` vectors (default 200k x 128, a
couple of minutes; the issue's target size is ``--n 1000000 --dim 384``) and ``--queries``
held-out queries from the same mixture. Ground truth: exact search (``Flat``).

Both sides use the same nlist, m (8-bit codes), k_factor, training set and metric, and are
swept over ``--nprobe``. Reported per side and thread count (1 and all): recall@10, queries/s,
build time (train + add), RAM bytes/vector. Ours keeps the full vectors for re-ranking on disk
(memory-mapped, ``disk_bytes``); faiss' ``IndexRefineFlat`` holds them in RAM. faiss' L2
IVFPQ also keeps a precomputed table of ``nlist x m x 256`` floats (listed on its own).
"Ratio at equal recall": our QPS over faiss' QPS interpolated (log scale) at our recall.

Usage:
    python benchmarks/ivf_vs_faiss.py [--n 200000] [--dim 128] [--nlist 1024] [--m 16]
        [--nprobe 8,16,32,64,128] [--k-factor 10] [--metric l2] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from index_vs_faiss import best_time  # a sibling script (benchmarks/ is on sys.path)


@dataclass
class Row:
    """One (method, nprobe, threads) measurement."""

    method: str
    nprobe: int
    threads: int
    recall: float
    qps: float
    ram_bytes_per_vector: float
    disk_bytes_per_vector: float
    build_s: float


def mixture(n: int, dim: int, centres: int, seed: int, separation: float = 1.5) -> np.ndarray:
    """``n`` points of a seeded anisotropic Gaussian mixture, float32 ``(n, dim)``.

    Centres ``~ N(0, separation^2 S^2)``, points ``centre + u N(0, S^2)`` with
    ``S = diag(1 / sqrt(i))`` and ``u ~ U(0.5, 1.5)`` per cluster, then a random rotation.
    At ``separation=1.5`` the clusters overlap: ``IVF512,Flat`` on 100k x 128 needs nprobe 32
    for recall@10 0.95 (0.72 at nprobe 4); at 3 nprobe 4 already gives 0.99.
    """
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(np.arange(1, dim + 1))
    rot, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    mu = rng.standard_normal((centres, dim)) * scale * separation
    spread = rng.uniform(0.5, 1.5, centres)[:, None]
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):  # blocks keep the float64 temporaries small
        m = min(n - s, 100_000)
        c = rng.integers(0, centres, m)
        out[s : s + m] = (mu[c] + spread[c] * rng.standard_normal((m, dim)) * scale) @ rot.T
    return out


def set_threads(n: int) -> None:
    import faiss
    import numba  # type: ignore[import-untyped]
    import torch
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(n)
    faiss.omp_set_num_threads(n)
    torch.set_num_threads(n)
    threadpool_limits(n)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def interp_qps(rec: float, curve: list[tuple[float, float]]) -> float | None:
    """faiss' QPS at recall ``rec`` (log-linear between its points; None outside them)."""
    pts = sorted(curve)
    for (r0, q0), (r1, q1) in itertools.pairwise(pts):
        if r0 <= rec <= r1:
            t = 0.0 if r1 == r0 else (rec - r0) / (r1 - r0)
            return float(np.exp(np.log(q0) + t * (np.log(q1) - np.log(q0))))
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--centres", type=int, default=2000)
    parser.add_argument("--separation", type=float, default=1.5, help="see mixture()")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--m", type=int, default=0, help="PQ sub-quantisers (default dim / 8)")
    parser.add_argument(
        "--code", choices=["pq", "binary"], default="pq", help="our list code (faiss: IVFPQ)"
    )
    parser.add_argument("--nprobe", default="8,16,32,64,128")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--k-factor", type=int, default=10)
    parser.add_argument(
        "--metric", choices=["l2", "ip", "cos"], default="l2", help="cos: unit vectors, ip"
    )
    parser.add_argument("--train", type=int, default=100_000, help="training vectors")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", default="", help="thread counts (default: 1 and all)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import faiss

    from embedlab.index import index_factory

    m = args.m or args.dim // 8
    nprobes = [int(v) for v in args.nprobe.split(",")]
    all_threads = len(os.sched_getaffinity(0))
    threads = [int(t) for t in args.threads.split(",")] if args.threads else [1, all_threads]
    data = mixture(args.n + args.queries, args.dim, args.centres, args.seed, args.separation)
    if args.metric == "cos":  # both sides get unit vectors; faiss scores them by inner product
        for s0 in range(0, data.shape[0], 100_000):
            block = data[s0 : s0 + 100_000]
            block /= np.linalg.norm(block, axis=1, keepdims=True)
    x, q = data[: args.n], data[args.n :]
    train = x[: args.train]
    set_threads(all_threads)

    exact = index_factory(args.dim, "Flat", metric=args.metric)
    exact.add(x)
    truth = exact.search(q, args.k)[1]
    del exact

    code = f"PQ{m}" if args.code == "pq" else "Binary"
    spec = f"IVF{args.nlist},{code},Rerank(Flat,k_factor={args.k_factor})"
    start = time.perf_counter()
    ours = index_factory(args.dim, spec, metric=args.metric)
    ours.train(train)
    ours.add(x)
    ours_build = time.perf_counter() - start

    fmetric = faiss.METRIC_L2 if args.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    start = time.perf_counter()
    quantizer = faiss.IndexFlat(args.dim, fmetric)
    ivfpq = faiss.IndexIVFPQ(quantizer, args.dim, args.nlist, m, 8, fmetric)
    ivfpq.cp.seed = args.seed
    ref = faiss.IndexRefineFlat(ivfpq)
    ref.k_factor = args.k_factor
    ref.train(train)
    ref.add(x)
    ref_build = time.perf_counter() - start
    table = int(ivfpq.precomputed_table.size()) * 4
    ref_ram = (
        args.n * (ivfpq.code_size + 8)  # codes + int64 ids in the lists
        + args.nlist * args.dim * 4  # centroids
        + int(ivfpq.pq.centroids.size()) * 4  # codebooks
        + table
        + args.n * args.dim * 4  # refine vectors
    )
    print(
        f"data {args.n} x {args.dim} ({args.centres} anisotropic clusters), {args.queries} "
        f"queries, metric {args.metric}, k {args.k}; ours {spec}; faiss IVF{args.nlist},"
        f"PQ{m} + RefineFlat(k_factor={args.k_factor}); faiss precomputed table "
        f"{table / args.n:.1f} B/vector"
    )
    print(f"build: ours {ours_build:.1f} s, faiss {ref_build:.1f} s")

    rows: list[Row] = []
    for t in threads:
        set_threads(t)
        for nprobe in nprobes:
            ours.search(q[:10], args.k, nprobe=nprobe)  # warm-up (numba compilation)
            ids = ours.search(q, args.k, nprobe=nprobe)[1]
            sec = best_time(lambda p=nprobe: ours.search(q, args.k, nprobe=p), args.repeats)
            rows.append(
                Row(
                    "ours",
                    nprobe,
                    t,
                    recall(ids, truth),
                    args.queries / sec,
                    ours.memory_bytes() / args.n,
                    ours.disk_bytes() / args.n,
                    ours_build,
                )
            )
            ivfpq.nprobe = nprobe
            ids = ref.search(q, args.k)[1]
            sec = best_time(lambda: ref.search(q, args.k), args.repeats)
            rows.append(
                Row("faiss", nprobe, t, recall(ids, truth), args.queries / sec,
                    ref_ram / args.n, 0.0, ref_build)
            )  # fmt: skip
    set_threads(all_threads)

    print(f"{'method':6s} {'nprobe':>6s} {'thr':>3s} {'recall':>7s} {'QPS':>9s} "
          f"{'RAM B/v':>8s} {'disk B/v':>8s}  ratio at equal recall")  # fmt: skip
    for r in rows:
        extra = ""
        if r.method == "ours":
            curve = [
                (f.recall, f.qps) for f in rows if f.method == "faiss" and f.threads == r.threads
            ]
            ref_qps = interp_qps(r.recall, curve)
            extra = f"{r.qps / ref_qps:.2f}x" if ref_qps else "(outside faiss' range)"
        print(f"{r.method:6s} {r.nprobe:6d} {r.threads:3d} {r.recall:7.4f} {r.qps:9.0f} "
              f"{r.ram_bytes_per_vector:8.1f} {r.disk_bytes_per_vector:8.1f}  {extra}")  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)},
                                         "rows": [asdict(r) for r in rows]}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
