"""The faiss side of :class:`embedlab.index.hnsw.HNSW`: building the graph, loading Int8's
ranges into faiss' scalar quantiser, a filtered search, a rebuild from stored codes and the
memory of the graph. Everything here speaks faiss rows and faiss distances; the mapping to
embedlab's row positions, ids and scores stays in :mod:`embedlab.index.hnsw`."""

from __future__ import annotations

from typing import Any

import faiss as _faiss_module
import numpy as np
import numpy.typing as npt

from embedlab.index._types import F32, I64

__all__ = [
    "B8",
    "copy_int8_ranges",
    "faiss",
    "faiss_metric",
    "graph_memory_bytes",
    "make_graph",
    "rebuild_graph",
    "search_graph",
    "set_int8_ranges",
]

# faiss' bundled type stubs miss much of the SWIG API (SearchParametersHNSW, downcast
# storages' ``sq``/``code_size``): use it untyped.
faiss: Any = _faiss_module

B8 = npt.NDArray[np.bool_]


def faiss_metric(metric: str) -> int:
    """faiss' metric for embedlab's: L2 for ``"l2"``, inner product for ``"ip"`` / ``"cos"``."""
    return int(faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT)


def make_graph(
    dim: int, M: int, metric: str, *, int8: bool, ef_construction: int, ef_search: int
) -> Any:
    """An empty ``IndexHNSWSQ`` (8-bit codes, untrained) or ``IndexHNSWFlat``."""
    if int8:
        qt = faiss.ScalarQuantizer.QT_8bit
        index = faiss.IndexHNSWSQ(dim, qt, M, faiss_metric(metric))
    else:
        index = faiss.IndexHNSWFlat(dim, M, faiss_metric(metric))
    index.hnsw.efConstruction = ef_construction
    index.hnsw.efSearch = ef_search
    return index


def set_int8_ranges(index: Any, lo: np.ndarray, step: np.ndarray) -> None:
    """Train ``index``'s scalar quantiser so that it encodes and decodes as Int8 does.

    faiss encodes ``floor(255 (x - vmin) / vdiff)`` and decodes ``vmin + (c + 0.5)
    vdiff / 255``; with ``vmin = lo - step / 2`` and ``vdiff = 255 step`` both equal
    Int8's ``rint((x - lo) / step)`` and ``lo + c step`` (``lo``, ``step``: ``(dim,)``).
    """
    trained = np.concatenate([lo - step / 2, 255 * step]).astype(np.float32)
    storage = faiss.downcast_index(index.storage)
    faiss.copy_array_to_vector(trained, storage.sq.trained)
    storage.is_trained = True
    index.is_trained = True


def copy_int8_ranges(src: Any, dst: Any) -> None:
    """Give ``dst``'s scalar quantiser the trained ranges of ``src``'s."""
    storage = faiss.downcast_index(src.storage)
    new_storage = faiss.downcast_index(dst.storage)
    faiss.copy_array_to_vector(faiss.vector_to_array(storage.sq.trained), new_storage.sq.trained)
    new_storage.is_trained = True
    dst.is_trained = True


def rebuild_graph(src: Any, dst: Any, keep_rows: I64, dim: int) -> None:
    """Add to the empty graph ``dst`` the stored vectors of ``src``'s rows ``keep_rows``
    (sorted), in order and in blocks (de-quantised codes re-encode to the same codes)."""
    storage = faiss.downcast_index(src.storage)
    block = max(1, (1 << 24) // dim)
    for start in range(0, keep_rows.size, block):
        rows = keep_rows[start : start + block]
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        x = storage.reconstruct_n(lo, hi - lo)[rows - lo]
        dst.add(np.ascontiguousarray(x, dtype=np.float32))


def search_graph(
    index: Any, q: F32, k: int, ef: int, allowed: B8 | None, metric: str
) -> tuple[F32, I64]:
    """faiss' HNSW search of width ``ef``, restricted to the ``allowed`` faiss rows (an
    ``IDSelectorBitmap``): ``(scores (n_q, k), faiss rows (n_q, k))``, scores as embedlab's
    (negative squared distances for ``"l2"``), ``-inf`` / ``-1`` where none was found."""
    params = faiss.SearchParametersHNSW()
    params.efSearch = int(ef)
    bits = None
    if allowed is not None:
        bits = np.packbits(allowed, bitorder="little")
        # faiss keeps a raw pointer: ``bits`` and ``sel`` must live through the search.
        sel = faiss.IDSelectorBitmap(allowed.size, faiss.swig_ptr(bits))
        params.sel = sel
    dist, rows = index.search(np.ascontiguousarray(q), k, params=params)
    rows = np.asarray(rows, dtype=np.int64)
    scores = np.asarray(-dist if metric == "l2" else dist, dtype=np.float32)
    scores[rows < 0] = -np.inf
    return scores, rows


def graph_memory_bytes(index: Any, *, int8: bool) -> int:
    """RAM of ``index``: codes, the graph's links, offsets and levels, and Int8's ranges."""
    hnsw = index.hnsw
    storage = faiss.downcast_index(index.storage)
    codes = int(index.ntotal) * int(storage.code_size)
    graph = int(hnsw.neighbors.size()) * 4 + int(hnsw.offsets.size()) * 8
    graph += int(hnsw.levels.size()) * 4
    ranges = int(storage.sq.trained.size()) * 4 if int8 else 0
    return codes + graph + ranges
