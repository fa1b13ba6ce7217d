"""Chamfer similarity of vector sets, exact Chamfer search and the single-vector heuristic.

Late-interaction models (ColBERT) embed a text as a SET of token vectors; two sets are
compared by the Chamfer similarity (MaxSim), as in the MUVERA paper (Dhulipala et al.,
NeurIPS 2024)::

    Chamfer(Q, P) = sum_{q in Q} max_{p in P} <q, p>

It is not symmetric: the sum runs over the query's vectors.

Sets are kept PACKED: one ``(total, dim)`` matrix of all vectors, set after set, and
``offsets (n + 1,)`` with set ``i`` in rows ``offsets[i]:offsets[i + 1]`` (:class:`PackedSets`).
One query against many documents is then one matmul ``(m, dim) @ (dim, total)`` followed by a
segment max (``np.maximum.reduceat`` over the document boundaries) and a sum over the query's
rows; no Python loop runs per vector or per document.

Also here (the containers, kernels and store live in private modules, re-exported here:
:mod:`embedlab.index._token_sets`, :mod:`embedlab.index._chamfer_kernels`,
:mod:`embedlab.index._token_store`):

- :func:`chamfer_search`: exact (brute-force) Chamfer top-k, blocked over documents and queries.
- :class:`TokenStore`: the packed document vectors of an index in a float32 file mapped with
  ``numpy.memmap`` (the bi-granular layout of ``Rerank``), with exact Chamfer re-ranking of
  candidate documents that reads only their rows.
- :class:`TokenHeuristic`: the baseline the MUVERA paper compares against (PLAID / ColBERT
  v2 candidate generation in its simplest form): every document vector goes into a
  single-vector index with a vector -> document map; each query vector fetches its ``k'``
  nearest document vectors; the union of their documents is re-ranked with exact Chamfer.
"""

from __future__ import annotations

from typing import Any

from embedlab._validation import check_int
from embedlab.index._base import MAX_PADDING
from embedlab.index._chamfer_kernels import chamfer_scores, chamfer_top_k
from embedlab.index._token_sets import PackedSets, pack_sets
from embedlab.index._token_store import TokenStore
from embedlab.index._types import F32, I64

__all__ = [
    "PackedSets",
    "TokenStore",
    "chamfer",
    "chamfer_matrix",
    "chamfer_search",
    "pack_sets",
]


def chamfer_matrix(queries: Any, docs: Any) -> F32:
    """Chamfer similarity of every query set to every document set.

    Args:
        queries: query sets (see :func:`pack_sets`), ``n_q`` of them.
        docs: document sets, ``n`` of them, same ``dim``.

    Returns:
        ``(n_q, n)`` float32.
    """
    d = pack_sets(docs, name="docs")
    q = pack_sets(queries, d.dim, name="queries")
    return chamfer_scores(q, d)


def chamfer(query: Any, docs: Any) -> F32:
    """Chamfer similarity of one query set ``(m, dim)`` to each of ``n`` document sets.

    Example:
        >>> import numpy as np
        >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> docs = [np.array([[1.0, 0.0]]), np.array([[0.5, 0.5], [0.0, 2.0]])]
        >>> chamfer(q, docs).tolist()  # doc 0: 1 + 0; doc 1: 0.5 + 2
        [1.0, 2.5]
    """
    d = pack_sets(docs, name="docs")
    q = pack_sets([query], d.dim, name="query")
    out: F32 = chamfer_scores(q, d)[0]
    return out


def chamfer_search(queries: Any, docs: Any, k: int) -> tuple[F32, I64]:
    """Exact Chamfer top-``k``: every query against every document (brute force).

    Args:
        queries: ``n_q`` query sets; docs: ``n`` document sets (see :func:`pack_sets`).
        k: results per query (>= 1); when ``k > n`` the missing results are ``-1`` / ``-inf``.

    Returns:
        ``(scores (n_q, k) float32, rows (n_q, k) int64)``: document ROW numbers, best first,
        ties broken by the lower row.
    """
    k = check_int("k", k, min_value=1)
    d = pack_sets(docs, name="docs")
    q = pack_sets(queries, d.dim, name="queries")
    k = min(k, max(len(d), MAX_PADDING))  # never allocate by k alone
    return chamfer_top_k(q, d, k)
