"""Our index kernels against faiss on the same machine, data and threads.

Data: 100,000 x 384-d clustered, anisotropic vectors in a random basis with a shared mean
direction (like sentence embeddings), 1,000 held-out queries, k=10, metric cos.

(a) ``Binary(scoring=hamming)`` (ours) vs ``faiss.IndexBinaryFlat`` on the same sign bits:
    queries/s and ratio (the asymmetric default scan is timed by ``binary_asym.py``).
(b) ``PQ48`` (ours, wraps faiss) vs ``faiss.IndexPQ(384, 48, 8)``: queries/s and ratio.
    Both timings include the per-query work the protocol does (normalising / packing the
    queries), so the ratio is our wrapper's overhead.
(c) recall@10 against exact cosine search: sign binarisation vs BEBR1 (48 bytes/vector), and
    BEBR2 vs PQ96 (96 bytes/vector each), plus PQ48.

Timings are the best of ``--repeats`` runs, with 1 thread and with all threads (faiss via
OpenMP, torch for BEBR's encoder).

Usage:
    python benchmarks/index_vs_faiss.py [--n 100000] [--dim 384] [--queries 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def structured(n: int, dim: int, seed: int = 0) -> Any:
    """Clustered (1,000 centres), spectrum ``1 / i^0.7``, rotated, offset along a mean direction."""
    import numpy as np

    rng = np.random.default_rng(seed)
    spec = 1.0 / np.arange(1, dim + 1) ** 0.7
    rot, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    centres = rng.standard_normal((1000, dim)) * spec
    x = centres[rng.integers(0, 1000, n)] + 0.6 * rng.standard_normal((n, dim)) * spec
    x = x @ rot.T
    mean = rng.standard_normal(dim)
    x += 0.5 * np.linalg.norm(x, axis=1).mean() * mean / np.linalg.norm(mean)
    return x.astype(np.float32)


def best_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    try:
        import faiss
    except ImportError:
        print("skipped: faiss is not installed (pip install 'embedlab[faiss]')")
        return 0
    import numpy as np
    import torch

    import embedlab.index.bebr
    import embedlab.index.pq  # noqa: F401
    from embedlab.index import index_factory
    from embedlab.index._base import INDEXES, l2_normalize

    k, dim = args.k, args.dim
    data = structured(args.n + args.queries, dim, args.seed)
    q, x = data[: args.queries], data[args.queries :]
    xn, qn = l2_normalize(x), l2_normalize(q)
    truth = np.argsort(-(qn @ xn.T), axis=1)[:, :k]

    def recall(ids: Any) -> float:
        return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, truth, strict=True)]))

    all_threads = os.cpu_count() or 1
    thread_counts = sorted({1, all_threads})
    results: dict[str, Any] = {
        "suite": "index_vs_faiss",
        "params": {"n": args.n, "dim": dim, "queries": args.queries, "k": k, "seed": args.seed},
        "speed": [],
        "recall": [],
    }

    def set_threads(t: int) -> None:
        faiss.omp_set_num_threads(t)
        torch.set_num_threads(t)

    # ------------------------------------------------------------- (a) Binary
    binary_ours = None
    if "Binary" in INDEXES:
        binary_ours = index_factory(dim, "Binary(scoring=hamming)", metric="cos")
        binary_ours.add(x)
        fb = faiss.IndexBinaryFlat(dim)
        fb.add(np.packbits(xn > 0, axis=1))

        def faiss_binary() -> Any:
            return fb.search(np.packbits(l2_normalize(q) > 0, axis=1), k)

        for t in thread_counts:
            set_threads(t)
            ours = best_time(lambda: binary_ours.search(q, k), args.repeats)  # type: ignore[union-attr]
            ref = best_time(faiss_binary, args.repeats)
            results["speed"].append(
                {
                    "test": "Binary vs IndexBinaryFlat",
                    "threads": t,
                    "ours_qps": args.queries / ours,
                    "faiss_qps": args.queries / ref,
                    "ratio": ref / ours,
                }
            )
    else:
        print("(a) skipped: the Binary index is not registered yet")

    # ----------------------------------------------------------------- (b) PQ
    set_threads(all_threads)
    pq_ours = index_factory(dim, "PQ48", metric="cos")
    start = time.perf_counter()
    pq_ours.train(x)
    pq_train_s = time.perf_counter() - start
    pq_ours.add(x)
    fpq = faiss.IndexPQ(dim, 48, 8, faiss.METRIC_INNER_PRODUCT)
    fpq.train(xn)
    fpq.add(xn)

    def faiss_pq() -> Any:
        return fpq.search(l2_normalize(q), k)

    for t in thread_counts:
        set_threads(t)
        ours = best_time(lambda: pq_ours.search(q, k), args.repeats)
        ref = best_time(faiss_pq, args.repeats)
        results["speed"].append(
            {
                "test": "PQ48 vs IndexPQ(384,48,8)",
                "threads": t,
                "ours_qps": args.queries / ours,
                "faiss_qps": args.queries / ref,
                "ratio": ref / ours,
            }
        )

    # ------------------------------------------------------------- (c) recall
    set_threads(all_threads)
    sign_scores_ids = None
    if binary_ours is not None:
        sign_scores_ids = binary_ours.search(q, k)[1]
    else:
        ham = np.where(qn > 0, 1.0, -1.0) @ np.where(xn > 0, 1.0, -1.0).T
        sign_scores_ids = np.argsort(-ham, axis=1, kind="stable")[:, :k]
    results["recall"].append(
        {"method": "sign (Binary)", "bytes_per_vector": dim // 8, "recall": recall(sign_scores_ids)}
    )
    for spec in ("BEBR1", "BEBR2", "PQ48", "PQ96"):
        if spec == "PQ48":
            index = pq_ours
            train_s = pq_train_s
        else:
            index = index_factory(dim, spec, metric="cos", seed=args.seed)
            start = time.perf_counter()
            index.train(x)
            train_s = time.perf_counter() - start
            index.add(x)
        start = time.perf_counter()
        ids = index.search(q, k)[1]
        search_s = time.perf_counter() - start
        code_bytes = int(getattr(index, "code_bytes", 0))
        results["recall"].append(
            {
                "method": spec,
                "bytes_per_vector": code_bytes,
                "recall": recall(ids),
                "ram_bytes_per_vector": index.memory_bytes() / index.ntotal,
                "train_s": train_s,
                "qps": args.queries / search_s,
            }
        )

    # ----------------------------------------------------------------- output
    print(f"\n{args.n:,} x {dim}-d, {args.queries:,} queries, k={k}, cpu_count={all_threads}")
    print(f"\n{'speed':34} {'threads':>7} {'ours q/s':>10} {'faiss q/s':>10} {'ratio':>7}")
    for r in results["speed"]:
        print(
            f"{r['test']:34} {r['threads']:>7} {r['ours_qps']:>10,.0f} "
            f"{r['faiss_qps']:>10,.0f} {r['ratio']:>6.2f}x"
        )
    print(
        f"\n{'recall@10 vs exact':18} {'code B/vec':>10} {'RAM B/vec':>10} {'recall':>7} "
        f"{'train s':>8} {'q/s':>8}"
    )
    for r in results["recall"]:
        print(
            f"{r['method']:18} {r['bytes_per_vector']:>10} "
            f"{r.get('ram_bytes_per_vector', float('nan')):>10.1f} {r['recall']:>7.3f} "
            f"{r.get('train_s', float('nan')):>8.1f} {r.get('qps', float('nan')):>8.0f}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
