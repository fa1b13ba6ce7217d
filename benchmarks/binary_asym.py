"""Asymmetric vs Hamming scoring of sign codes: recall after re-ranking, and scan speed.

(a) MiniLM DBpedia (``../shared/data/beir-mini/dbpedia``, 384-d; the corpus minus 1,000
    held-out documents, which are the queries; embedded as in
    ``benchmarks/retrieval_dbpedia.py``): recall@10 of ``Binary,Rerank(Flat)`` against exact
    cosine search (``Flat``) for each ``k_factor``, with ``scoring=asym`` and
    ``scoring=hamming`` (and the first stage alone). Skipped when the folder is missing.
(b) First-stage speed on the same codes: ``Binary`` (asym, our numba LUT scan),
    ``Binary(scoring=hamming)`` (``faiss.knn_hamming``) and ``faiss.IndexBinaryFlat``,
    queries/s for ``k = 10 * k_factor`` candidates, 1 thread and all threads, on the DBpedia
    corpus and on ``--n`` synthetic clustered 384-d vectors (``index_vs_faiss.structured``).
    Timings are the best of ``--repeats`` runs and include the per-query work each side does
    (normalising, packing or building tables).

Usage:
    python benchmarks/binary_asym.py [--data DIR] [--n 100000] [--queries 1000]
        [--k-factors 2,3,5,10,20] [--qps-k-factor 10] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DBPEDIA = ROOT.parent / "shared" / "data" / "beir-mini" / "dbpedia"
sys.path.insert(0, str(Path(__file__).resolve().parent))


from index_vs_faiss import best_time  # noqa: E402 - a sibling script, on sys.path


def set_threads(n: int) -> None:
    import faiss
    import numba  # type: ignore[import-untyped]
    import torch

    numba.set_num_threads(n)
    faiss.omp_set_num_threads(n)
    torch.set_num_threads(n)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def variants(query_bits: list[int]) -> list[str]:
    """The first-stage specs compared: asymmetric at each query precision, then Hamming."""
    return [f"Binary(query_bits={b})" for b in query_bits] + ["Binary(scoring=hamming)"]


def rerank_recalls(
    corpus: np.ndarray, queries: np.ndarray, k_factors: list[int], k: int, specs: list[str]
) -> dict[str, dict[str, float]]:
    """recall@k of ``<spec>,Rerank(Flat)`` per k_factor, against exact cosine."""
    from embedlab.index import index_factory

    exact = index_factory(corpus.shape[1], "Flat")
    exact.add(corpus)
    truth = exact.search(queries, k)[1]
    out: dict[str, dict[str, float]] = {}
    for spec in specs:
        index = index_factory(corpus.shape[1], f"{spec},Rerank(Flat)")
        index.add(corpus)
        row = {"first_stage": recall(index.base.search(queries, k)[1], truth)}  # type: ignore[attr-defined]
        for kf in k_factors:
            row[f"k_factor={kf}"] = recall(index.search(queries, k, k_factor=kf)[1], truth)
        out[spec] = row
    return out


def scan_speed(
    corpus: np.ndarray, queries: np.ndarray, k: int, repeats: int, specs: list[str]
) -> dict[str, dict[str, float]]:
    """Queries/s of the first stages and faiss ``IndexBinaryFlat``, 1 thread and all threads."""
    import faiss

    from embedlab.index import index_factory
    from embedlab.index._base import l2_normalize

    indexes = {spec: index_factory(corpus.shape[1], spec) for spec in specs}
    for index in indexes.values():
        index.add(corpus)
    codes = next(iter(indexes.values())).codes  # type: ignore[attr-defined]
    ref = faiss.IndexBinaryFlat(corpus.shape[1])
    ref.add(np.ascontiguousarray(codes.view(np.uint8)[:, : -(-corpus.shape[1] // 8)]))

    def faiss_search() -> None:
        qn = l2_normalize(np.ascontiguousarray(queries, dtype=np.float32))
        ref.search(np.packbits(qn > 0, axis=1, bitorder="little"), k)

    runs: dict[str, Any] = {
        spec: (lambda index=index: index.search(queries, k)) for spec, index in indexes.items()
    }
    runs["faiss.IndexBinaryFlat"] = faiss_search
    all_threads = len(os.sched_getaffinity(0))
    out: dict[str, dict[str, float]] = {}
    for threads in (1, all_threads):
        set_threads(threads)
        for name, fn in runs.items():
            fn()  # warm up (numba compilation, caches)
            qps = queries.shape[0] / best_time(fn, repeats)
            out.setdefault(name, {})[f"qps_{threads}thread"] = qps
    set_threads(all_threads)
    return out


def print_speed(title: str, speed: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    ref = speed["faiss.IndexBinaryFlat"]
    for name, row in speed.items():
        cells = "  ".join(
            f"{key.removeprefix('qps_')}: {v:9.0f} q/s ({v / ref[key]:.2f}x faiss)"
            for key, v in row.items()
        )
        print(f"  {name:26s} {cells}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DBPEDIA)
    parser.add_argument("--n", type=int, default=100_000, help="synthetic corpus size (0: skip)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--k-factors", default="2,3,5,10,20")
    parser.add_argument("--query-bits", default="0,4,5,6,8", help="asym query precisions")
    parser.add_argument("--qps-k-factor", type=int, default=10, help="candidates = k * this")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    k_factors = [int(v) for v in args.k_factors.split(",")]
    specs = variants([int(v) for v in args.query_bits.split(",")])
    k_cand = args.k * args.qps_k_factor
    results: dict[str, Any] = {"k": args.k, "k_factors": k_factors, "qps_k": k_cand}

    if (args.data / "corpus.jsonl").is_file():
        from embedlab.data.retrieval import load_retrieval

        data = load_retrieval(f"beir:{args.data}", seed=args.seed, n_holdout=args.queries)
        corpus, queries = data.corpus, data.holdout
        print(f"{data.name}: corpus {corpus.shape}, {queries.shape[0]} held-out queries")
        rec = rerank_recalls(corpus, queries, k_factors, args.k, specs)
        results["dbpedia_recall"] = rec
        print(f"recall@{args.k} of Binary,Rerank(Flat) against Flat (cos):")
        print(
            f"  {'first stage':26s} {'alone':>6s} " + " ".join(f"kf={kf:<3d}" for kf in k_factors)
        )
        for spec, row in rec.items():
            cells = " ".join(f"{row[f'k_factor={kf}']:.4f}" for kf in k_factors)
            print(f"  {spec:26s} {row['first_stage']:.4f} {cells}")
        speed = scan_speed(corpus, queries, k_cand, args.repeats, specs)
        results["dbpedia_qps"] = speed
        print_speed(f"first stage, DBpedia codes {corpus.shape}, k={k_cand}", speed)
    else:
        print(f"skip DBpedia: {args.data} not found (see ../shared/data/README.md)")

    if args.n:
        from index_vs_faiss import structured

        x = structured(args.n + args.queries, 384, args.seed)
        corpus, queries = x[: args.n], x[args.n :]
        speed = scan_speed(corpus, queries, k_cand, args.repeats, specs)
        results["synthetic_qps"] = speed
        print_speed(f"first stage, synthetic {corpus.shape}, k={k_cand}", speed)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
