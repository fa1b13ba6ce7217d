"""The ``"hnsw"`` strategy of :class:`~embedlab.index.filtered.FilteredIndex`: the HNSW base
index searched with the predicate as a faiss ``IDSelectorBitmap``.

faiss' HNSW search with a selector (``SearchParametersHNSW(sel=...)``) traverses every node
but only returns the selected ones, so for a share ``s`` of matching rows a search of width
``ef`` holds about ``ef * s`` matching results. To make ``efSearch`` mean the same for this
strategy as for ACORN (whose result queue holds only matching nodes), the faiss width is
``efSearch / s``; queries that still reach fewer than ``k`` matching rows are searched again
4x wider (:meth:`embedlab.index.hnsw.HNSW.search_positions`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from embedlab.index._base import F32, I64, Metric, VectorIndex
from embedlab.index.hnsw import HNSW
from embedlab.index.rerank import rescore_candidates

__all__ = ["find_hnsw", "hnsw_filtered_search"]

#: candidates per result re-scored exactly when the HNSW holds Int8 codes and no Rerank stage
#: says how many: on the 2,000 x 32 test data (cos), recall@10 0.986 with 1, 1.000 with 2
INT8_FETCH = 2


def find_hnsw(base: VectorIndex | None) -> tuple[HNSW, int] | None:
    """The HNSW index under ``base`` (``base`` itself or the index a ``Rerank`` stage wraps)
    and the candidates to fetch per result (the ``Rerank``'s ``k_factor``, else 1)."""
    index, k_factor = base, 1
    while isinstance(index, VectorIndex):
        if isinstance(index, HNSW):
            return index, k_factor
        k_factor = max(k_factor, int(getattr(index, "k_factor", 1)))
        index = getattr(index, "base", None)
    return None


def hnsw_filtered_search(
    hnsw: HNSW,
    k_factor: int,
    q: F32,
    k: int,
    mask: np.ndarray,
    ef: int | None,
    fetch_rows: Callable[[I64], np.ndarray],
    metric: Metric,
) -> tuple[F32, I64]:
    """Best ``k`` rows where ``mask`` is True for each query ``q (n_q, dim)``.

    Args:
        hnsw: the HNSW index whose row positions are the caller's rows.
        k_factor: candidates per result to re-score exactly when the HNSW holds Int8 codes
            (at least :data:`INT8_FETCH`).
        q: prepared queries ``(n_q, dim)``.
        k: results per query.
        mask: ``(n,)`` bool, the rows that pass the filter.
        ef: search width in matching results (default: the HNSW's ``efSearch``).
        fetch_rows: full vectors ``(m, dim)`` of row positions ``(m,)``, for re-scoring.
        metric: the index metric.

    Returns:
        ``(scores (n_q, k'), positions (n_q, k'))`` best first, ``k' <= k``; ``-1`` / ``-inf``
        where fewer rows were reached.
    """
    rows = int(np.count_nonzero(mask))
    exact = hnsw.code_name == "Flat"
    n_fetch = k if exact else min(rows, k * max(k_factor, INT8_FETCH))
    width = max(hnsw.efSearch if ef is None else ef, n_fetch)
    faiss_ef = min(hnsw.n_rows, math.ceil(width * mask.size / max(rows, 1)))
    s, pos = hnsw.search_positions(q, max(n_fetch, 1), ef=faiss_ef, mask=mask)
    if exact:
        return s[:, :k], pos[:, :k]
    ts, tp = rescore_candidates(q, pos, fetch_rows, metric, k)
    return ts, np.where(np.isfinite(ts), tp, -1)
