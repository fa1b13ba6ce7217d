"""The single-vector heuristic for multi-vector retrieval (the MUVERA paper's baseline).

Its own module so that :mod:`embedlab.index.chamfer` (Chamfer scoring and token storage)
does not need the index factory: the factory builds MUVERA, which uses chamfer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedlab._validation import check_int, check_vector_ids
from embedlab.index._base import F32, I64, MAX_PADDING, IdMap, Metric, VectorIndex, normalize_metric
from embedlab.index.chamfer import PackedSets, TokenStore, pack_sets
from embedlab.index.factory import index_factory

__all__ = ["TokenHeuristic"]


class TokenHeuristic:
    """Single-vector heuristic for multi-vector retrieval (the MUVERA paper's baseline).

    Every document vector is added to a single-vector index built by
    :func:`embedlab.index.index_factory` from ``index`` (default ``"Flat"``: exact), with a
    vector -> document map. A query's vectors each fetch their ``k_prime`` nearest document
    vectors; the distinct documents they belong to are the candidates, re-ranked with exact
    Chamfer on the stored sets (:class:`TokenStore`, on disk).

    Args:
        dim: vector dimension.
        metric: ``"cos"`` (vectors normalised) or ``"ip"``.
        index: spec of the single-vector index of document vectors.
        storage: folder for the document vectors file (default: a temporary folder).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> docs = [rng.standard_normal((5, 16)) for _ in range(50)]
        >>> h = TokenHeuristic(16); h.add_multi(docs)
        >>> scores, ids, n_cand = h.search_multi(docs[:2], k=3, k_prime=4)
        >>> ids[:, 0].tolist()
        [0, 1]
    """

    def __init__(
        self,
        dim: int,
        *,
        metric: Metric = "cos",
        index: str = "Flat",
        storage: str | Path | None = None,
    ) -> None:
        self.dim = check_int("dim", dim, min_value=1)
        self.metric: Metric = normalize_metric(metric)
        if self.metric == "l2":
            raise ValueError(
                "metric must be one of cos, ip (Chamfer sums inner products); got 'l2'"
            )
        self.index_spec = index
        self.index: VectorIndex = index_factory(self.dim, index, metric=self.metric)
        self._store = TokenStore(self.dim, storage=storage)
        self._idmap = IdMap()
        self._doc_of_vector: I64 = np.zeros(0, np.int64)

    @property
    def ntotal(self) -> int:
        """Number of documents (vector sets) the index holds."""
        return len(self._idmap)

    def _prepare(self, sets: Any, name: str) -> PackedSets:
        p = pack_sets(sets, self.dim, name=name)
        return p.normalized() if self.metric == "cos" else p

    def train_multi(self, sets: Any) -> None:
        """Train the vector index (e.g. PQ) on the vectors of ``sets``."""
        self.index.train(self._prepare(sets, "documents").vectors)

    def add_multi(self, sets: Any, ids: Any = None) -> None:
        """Add document sets with ``ids (n,)`` (default: sequential)."""
        p = self._prepare(sets, "documents")
        id_arr = (
            self._idmap.new_ids(len(p)) if ids is None else check_vector_ids("ids", ids, len(p))
        )
        self._idmap.check_new(id_arr)
        if not len(p):
            return
        first = self._store.n_vectors
        rows = np.repeat(np.arange(self.ntotal, self.ntotal + len(p), dtype=np.int64), p.lengths)
        self.index.add(p.vectors, ids=np.arange(first, first + p.vectors.shape[0]))
        self._store.append(p)
        self._doc_of_vector = np.concatenate([self._doc_of_vector, rows])
        self._idmap.append(id_arr)

    def candidates(self, queries: Any, k_primes: Sequence[int]) -> list[list[I64]]:
        """Candidate document rows of each query for several ``k'`` from ONE vector search.

        Each query vector fetches its ``max(k_primes)`` nearest document vectors; the
        candidates for ``k'`` are the distinct documents of the first ``k'`` of them.

        Returns:
            ``out[j][i]``: sorted distinct document rows of query ``i`` for ``k_primes[j]``.
        """
        kps = [check_int("k_prime", kp, min_value=1) for kp in k_primes]
        q = self._prepare(queries, "queries")
        if not kps or not self.ntotal:
            return [[np.zeros(0, np.int64) for _ in range(len(q))] for _ in kps]
        _, vec_ids = self.index.search(q.vectors, min(max(kps), self._store.n_vectors))
        docs = np.where(vec_ids >= 0, self._doc_of_vector[np.maximum(vec_ids, 0)], -1)
        out: list[list[I64]] = []
        for kp in kps:
            per_query = []
            for i in range(len(q)):
                cand = docs[q.offsets[i] : q.offsets[i + 1], :kp].ravel()
                per_query.append(np.unique(cand[cand >= 0]))
            out.append(per_query)
        return out

    def rerank(self, queries: Any, candidates: Sequence[I64], k: int) -> tuple[F32, I64]:
        """Exact Chamfer top-``k`` of each query among its candidate rows: ``(scores, ids)``."""
        k = check_int("k", k, min_value=1)
        q = self._prepare(queries, "queries")
        if len(candidates) != len(q):
            raise ValueError(f"candidates must hold one array per query ({len(q)}), got "
                             f"{len(candidates)}")  # fmt: skip
        scores, rows = self._store.rerank_many(q, candidates, k)
        return scores, np.where(rows >= 0, self._idmap.take(np.maximum(rows, 0)), -1)

    def search_multi(self, queries: Any, k: int, *, k_prime: int = 10) -> tuple[F32, I64, I64]:
        """Top ``k`` documents per query set, and how many documents each query re-ranked.

        Args:
            queries: query sets.
            k: results per query (>= 1).
            k_prime: document vectors fetched per query vector (>= 1).

        Returns:
            ``(scores (n_q, k), ids (n_q, k), n_candidates (n_q,))``; scores are exact
            Chamfer; missing results ``-1`` / ``-inf``.
        """
        k = min(check_int("k", k, min_value=1), max(self.ntotal, MAX_PADDING))
        q = self._prepare(queries, "queries")
        cand = self.candidates(q, [k_prime])[0]
        scores, ids = self.rerank(q, cand, k)
        return scores, ids, np.array([c.size for c in cand], dtype=np.int64)
