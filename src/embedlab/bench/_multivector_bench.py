"""The multi-vector sweep of the retrieval suite: MUVERA against exact Chamfer.

:func:`run_multivector_bench` — MUVERA against exact Chamfer. Queries are the real queries
followed by the held-out documents; exact Chamfer top-``k`` by brute force is the ground truth
(its time gives the brute-force record). For each (R, k_sim, d_proj) grid point the index
``MUVERA(r=R,k=K,p=P),Rerank(Chamfer)`` is built and searched with ``candidates=C`` for each C:
``recall@k`` after exact re-ranking, end-to-end ``qps``. The single-vector heuristic
(:class:`~embedlab.index.token_heuristic.TokenHeuristic`, exact ``Flat`` over every document vector)
gives one record per ``k'``; its candidate count is the mean number of distinct documents
re-ranked. Records: suite ``"retrieval"``, dataset = the data's name, model
``"minilm-tokens"``, ``memory_bytes`` per document; with real queries and held-out ones,
``recall@k_beir`` is the recall on the real queries alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from embedlab import __version__
from embedlab._validation import check_int
from embedlab.bench._record import BenchRecord
from embedlab.bench.retrieval import recall_at_k
from embedlab.data.multivector import MultiVectorData, TokenSets

__all__ = [
    "BRUTE_FORCE_METHOD",
    "DEFAULT_CANDIDATES",
    "DEFAULT_GRID",
    "DEFAULT_K_PRIMES",
    "MULTIVECTOR_MODEL",
    "concat_sets",
    "run_multivector_bench",
]

DEFAULT_GRID: tuple[tuple[int, int, int], ...] = ((20, 5, 16), (20, 4, 16), (20, 4, 8), (10, 4, 8))
DEFAULT_CANDIDATES: tuple[int, ...] = (10, 20, 50, 100, 200, 500, 1000)
DEFAULT_K_PRIMES: tuple[int, ...] = (1, 2, 4, 8, 12, 16, 20, 24, 32, 64, 128, 256)
MULTIVECTOR_MODEL = "minilm-tokens"
BRUTE_FORCE_METHOD = "Chamfer brute force"


# -- multi-vector ----------------------------------------------------------------------------


def concat_sets(a: TokenSets, b: TokenSets) -> TokenSets:
    """The sets of ``a`` followed by those of ``b``."""
    return TokenSets(
        np.concatenate([a.vectors, b.vectors]),
        np.concatenate([a.offsets, b.offsets[1:] + a.offsets[-1]]),
    )


def _mv_record(
    data: MultiVectorData, method: str, seed: int, recall: dict[str, float], **fields: Any
) -> BenchRecord:
    return BenchRecord(
        suite="retrieval",
        dataset=data.name,
        method=method,
        model=MULTIVECTOR_MODEL,
        metrics=recall,
        seed=seed,
        embedlab_version=__version__,
        **fields,
    )


def run_multivector_bench(
    tokens: MultiVectorData,
    grid: Sequence[tuple[int, int, int]] = DEFAULT_GRID,
    candidates: Sequence[int] = DEFAULT_CANDIDATES,
    k: int = 10,
    *,
    k_primes: Sequence[int] = DEFAULT_K_PRIMES,
    seed: int = 0,
    on_record: Callable[[BenchRecord], None] | None = None,
    on_index: Callable[[Any, TokenSets, np.ndarray], None] | None = None,
) -> list[BenchRecord]:
    """MUVERA grid x candidates, brute-force Chamfer and the heuristic (module docstring).

    Args:
        tokens: corpus token sets, queries and (optional) held-out documents as queries.
        grid: ``(R, k_sim, d_proj)`` points.
        candidates: FDE candidates re-ranked with exact Chamfer (values below ``k`` are
            skipped).
        k: recall cut-off.
        k_primes: document vectors fetched per query vector by the heuristic (empty: no
            heuristic records).
        seed: seeds the MUVERA encoders.
        on_record: called with each record when measured.
        on_index: called with ``(index, queries, exact_rows)`` after each MUVERA index is
            measured (the benchmark script refines C on it).

    Returns:
        The brute-force record, then per grid point one record per C, then one per ``k'``.
    """
    from embedlab.index import index_factory
    from embedlab.index.chamfer import chamfer_search, pack_sets
    from embedlab.index.token_heuristic import TokenHeuristic

    check_int("k", k, min_value=1)
    check_int("seed", seed, min_value=0)
    if not grid:
        raise ValueError("grid must hold at least one (R, k_sim, d_proj) point")
    cs = sorted({check_int("candidates", c, min_value=1) for c in candidates})
    queries = tokens.queries
    n_real = len(queries)
    if tokens.holdout is not None and len(tokens.holdout):
        queries = concat_sets(queries, tokens.holdout)
    if len(queries) == 0:
        raise ValueError(f"{tokens.name}: no queries to measure")
    split = 0 < n_real < len(queries)
    corpus = pack_sets(tokens.corpus, name="corpus")
    n_docs = len(corpus)
    records: list[BenchRecord] = []

    def emit(record: BenchRecord) -> None:
        records.append(record)
        if on_record is not None:
            on_record(record)

    def recalls(ids: np.ndarray) -> dict[str, float]:
        out = {f"recall@{k}": recall_at_k(ids, truth, k)}
        if split:
            out[f"recall@{k}_beir"] = recall_at_k(ids[:n_real], truth[:n_real], k)
        return out

    t0 = time.perf_counter()
    _, truth = chamfer_search(queries, corpus, k)
    brute_s = max(time.perf_counter() - t0, 1e-9)
    base = {"k": k, "n_queries": len(queries), "n_docs": n_docs}
    emit(
        _mv_record(
            tokens,
            BRUTE_FORCE_METHOD,
            seed,
            {f"recall@{k}": 1.0},
            timing={"search_s": brute_s, "qps": len(queries) / brute_s},
            params={**base, "reference": True},
        )
    )
    for r, ks, p in grid:
        spec = f"MUVERA(r={r},k={ks},p={p}),Rerank(Chamfer)"
        index: Any = index_factory(corpus.dim, spec, seed=seed)
        t0 = time.perf_counter()
        index.add_multi(corpus)
        build_s = time.perf_counter() - t0
        for c in (c for c in cs if c >= k):
            t0 = time.perf_counter()
            _, ids = index.search_multi(queries, k, candidates=c)
            search_s = max(time.perf_counter() - t0, 1e-9)
            emit(
                _mv_record(
                    tokens,
                    f"{index.spec()}@C={c}",
                    seed,
                    recalls(ids),
                    memory_bytes=round(int(index.memory_bytes()) / max(n_docs, 1)),
                    timing={
                        "build_s": build_s,
                        "search_s": search_s,
                        "qps": len(queries) / search_s,
                    },
                    params={
                        **base,
                        "spec": index.spec(),
                        "grid": [r, ks, p],
                        "candidates": c,
                        "fde_dim": index.encoder.output_dim,
                        "ram_bytes_total": int(index.memory_bytes()),
                        "disk_bytes": int(index.disk_bytes()),
                    },
                )
            )
        if on_index is not None:
            on_index(index, queries, truth)
    if k_primes:
        heuristic = TokenHeuristic(corpus.dim, index="Flat")
        t0 = time.perf_counter()
        heuristic.add_multi(corpus)
        h_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        cands = heuristic.candidates(queries, list(k_primes))
        token_s = time.perf_counter() - t0  # one vector search at max(k'), shared by all k'
        for kp, cand in zip(k_primes, cands, strict=True):
            t0 = time.perf_counter()
            _, ids = heuristic.rerank(queries, cand, k)
            rerank_s = time.perf_counter() - t0
            mean_c = float(np.mean([c.size for c in cand]))
            # a search at this k' costs the vector search (timed once) plus the re-ranking
            qps = len(queries) / max(token_s + rerank_s, 1e-9)
            emit(
                _mv_record(
                    tokens,
                    f"heuristic(Flat)@k'={kp}",
                    seed,
                    recalls(ids),
                    timing={
                        "build_s": h_build,
                        "token_search_s": token_s,
                        "rerank_s": rerank_s,
                        "qps": qps,
                    },
                    params={**base, "k_prime": kp, "mean_candidates": mean_c},
                )
            )
    return records


# -- summary ---------------------------------------------------------------------------------

#: Columns of the printed table of filtered and multi-vector records: the sweep point
#: (selectivity / C / k'), R@k against exact (filtered or Chamfer) search, QPS, and notes
#: (the planner's choices, the mean candidates of the heuristic).
