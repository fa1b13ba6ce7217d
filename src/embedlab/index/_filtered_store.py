"""The storage and the search strategies under :class:`~embedlab.index.filtered.FilteredIndex`.

:class:`FilteredStore` keeps, in step on add and remove, the attribute rows, the exact
float32 vectors (its own copy, or those of a ``Flat`` base), their squared norms (for
``metric="l2"``), the optional base index and the ACORN graph, and runs each strategy over
them: the exact scan of the matching rows (``"pre"``), the growing over-fetch from the
unfiltered index (``"post"``), the ACORN graph (``"acorn"``), the HNSW base with a selector
(``"hnsw"``, :mod:`._filtered_hnsw`) and the unfiltered search. :class:`FilteredIndex`
adds the constructor, the planner, the public search and persistence; the strategies and
the planner's measurements are described in :mod:`embedlab.index.filtered`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from embedlab.index._base import F32, I64, VectorIndex, topk_rows
from embedlab.index._filtered_hnsw import find_hnsw, hnsw_filtered_search
from embedlab.index._filtered_plan import Strategy
from embedlab.index.attributes import AttributeStore, Predicate
from embedlab.index.flat import Flat, pairwise_scores
from embedlab.index.rerank import rescore_candidates

if TYPE_CHECKING:
    from embedlab.index.acorn import AcornGraph

__all__ = ["FilteredStore", "graph_class"]

_BLOCK = 1 << 24  # score-matrix entries per block (64 MiB of float32)


def graph_class() -> type[AcornGraph]:
    """The ACORN graph class, imported on first use (numba is slow to import)."""
    from embedlab.index.acorn import AcornGraph

    return AcornGraph


class FilteredStore(VectorIndex):
    """Storage and strategies of a filtered index (see the module docstring); the
    attributes below are set by :class:`~embedlab.index.filtered.FilteredIndex`'s
    constructor."""

    base: VectorIndex | None
    strategy: Strategy
    attributes: AttributeStore
    post_growth: int
    graph: AcornGraph | None
    _graph_params: dict[str, Any]
    _x: F32
    _sq: F32
    _pending: dict[str, Any] | None

    # ------------------------------------------------------------ delegation
    @property
    def is_trained(self) -> bool:
        return True if self.base is None else self.base.is_trained

    def _min_train_points(self) -> int:
        return 0 if self.base is None else self.base._min_train_points()

    def _children(self) -> dict[str, VectorIndex]:
        return {} if self.base is None else {"base": self.base}

    @property
    def vectors(self) -> F32:
        """The stored vectors ``(ntotal, dim)`` (normalised for cosine)."""
        if isinstance(self.base, Flat):
            return self.base.vectors
        return self._x

    @property
    def _shares_vectors(self) -> bool:
        return isinstance(self.base, Flat)

    def _needs_graph(self) -> bool:
        if self.graph is not None or self.base is None or self.strategy == "acorn":
            return True
        return self.strategy == "auto" and find_hnsw(self.base) is None

    def build_graph(self) -> AcornGraph:
        """Build the ACORN graph now (it is otherwise built at the first search that needs it,
        or on add when the strategy or a missing base needs it) and return it."""
        if self.graph is None:
            self.graph = graph_class()(self.dim, metric=self.metric, **self._graph_params)
        if self.graph.n != self.ntotal:
            self.graph.extend(self.vectors)
        return self.graph

    # ------------------------------------------------------------ strategies
    def _unfiltered(self, q: F32, k: int, ef: int | None = None) -> tuple[F32, I64]:
        if self.base is not None:
            found = find_hnsw(self.base)
            if ef is not None and found is not None:
                # a Rerank stage asks the HNSW for k * k_factor candidates: ef must cover them
                width = max(ef, min(k * found[1], self.ntotal))
                s, ids = self.base.search(q, k, efSearch=width)
            else:
                s, ids = self.base.search(q, k)
            return s, self._idmap.lookup(ids)
        g = self.build_graph()
        s, p = g.search(self.vectors, q, k, ef=ef, x_sq=self._sq_or_none())
        return s, p.astype(np.int64)

    def _sq_or_none(self) -> F32 | None:
        return self._sq if self.metric == "l2" else None

    def _pre(self, q: F32, k: int, mask: np.ndarray) -> tuple[F32, I64]:
        """Exact top-``k`` among the rows where ``mask`` is True."""
        n = self.ntotal
        rows = np.flatnonzero(mask)
        n_q = q.shape[0]
        if rows.size == 0:
            return np.full((n_q, 0), -np.inf, np.float32), np.full((n_q, 0), -1, np.int64)
        x = self.vectors
        sq = self._sq_or_none()
        dense = rows.size > n // 4  # gathering most rows costs more than scoring them all
        sub = x if dense else x[rows]
        sub_sq = None if sq is None else (sq if dense else sq[rows])
        kk = min(k, rows.size)
        bq = max(1, _BLOCK // max(1, sub.shape[0]))
        out_s, out_p = [], []
        for start in range(0, n_q, bq):
            s = pairwise_scores(q[start : start + bq], sub, self.metric, sub_sq)
            if dense:
                s[:, ~mask] = -np.inf
                ts, tp = topk_rows(s, kk)
            else:
                ts, cols = topk_rows(s, kk)
                tp = rows[cols]
            out_s.append(ts)
            out_p.append(tp)
        return np.concatenate(out_s), np.concatenate(out_p)

    def _acorn(self, q: F32, k: int, mask: np.ndarray, ef: int | None = None) -> tuple[F32, I64]:
        g = self.build_graph()
        s, p = g.search(self.vectors, q, k, mask=mask, ef=ef, x_sq=self._sq_or_none())
        return s, p.astype(np.int64)

    def _hnsw(self, q: F32, k: int, mask: np.ndarray, ef: int | None = None) -> tuple[F32, I64]:
        found = find_hnsw(self.base)
        if found is None:  # pragma: no cover - checked when the strategy is chosen
            raise ValueError("strategy 'hnsw' needs an HNSW base index")
        hnsw, k_factor = found
        return hnsw_filtered_search(hnsw, k_factor, q, k, mask, ef, self._fetch_rows, self.metric)

    def _post(
        self, q: F32, k: int, pred: Predicate, selectivity: float, mask: np.ndarray | None
    ) -> tuple[F32, I64, int]:
        """Over-fetch from the unfiltered index, growing the fetch until ``k`` pass."""
        n = self.ntotal
        n_q = q.shape[0]
        out_s = np.full((n_q, k), -np.inf, np.float32)
        out_p = np.full((n_q, k), -1, np.int64)
        fetch = min(n, max(2 * k, math.ceil(1.5 * k / max(selectivity, 1.0 / n))))
        pending = np.arange(n_q)
        exact_base = self.base is None or isinstance(self.base, Flat)
        while pending.size:
            if self.base is None and fetch > n // 2:
                # Fetching most of the graph: an exact scan of the matching rows is cheaper.
                if mask is None:
                    mask = self.attributes.mask(pred)
                s, p = self._pre(q[pending], k, mask)
                out_s[pending, : s.shape[1]] = s
                out_p[pending, : p.shape[1]] = p
                break
            qp = q[pending]
            if self.base is None:
                g = self.build_graph()
                ef = max(g.ef_search, fetch)
                s, p32 = g.search(self.vectors, qp, fetch, ef=ef, x_sq=self._sq_or_none())
                pos = p32.astype(np.int64)
            else:
                s, ids = self.base.search(qp, fetch)
                pos = self._idmap.lookup(ids)
            ok = self.attributes.mask_rows(pred, pos)
            done = (ok.sum(axis=1) >= k) | (fetch >= n)
            if done.any():
                d_pos = np.where(ok[done], pos[done], -1)
                if exact_base:
                    d_s = np.where(ok[done], s[done], -np.inf).astype(np.float32)
                    ts, cols = topk_rows(d_s, k)
                    tp = np.take_along_axis(d_pos, cols, axis=1)
                else:
                    ts, tp = rescore_candidates(qp[done], d_pos, self._fetch_rows, self.metric, k)
                tp = np.where(np.isfinite(ts), tp, -1)
                out_s[pending[done], : ts.shape[1]] = ts
                out_p[pending[done], : tp.shape[1]] = tp
            pending = pending[~done]
            if pending.size:
                fetch = min(n, fetch * self.post_growth)
        return out_s, out_p, fetch

    def _fetch_rows(self, positions: I64) -> np.ndarray:
        return self.vectors[positions]

    # ------------------------------------------------------------ hooks
    def _train(self, x: F32) -> None:
        if self.base is not None:
            self.base.train(x)

    def _add(self, x: F32, ids: I64) -> None:
        encoded = self._pending if self._pending is not None else self.attributes._encode(
            None, x.shape[0]
        )  # fmt: skip
        if self.base is not None:
            self.base.add(x, ids)
        if not self._shares_vectors:
            self._x = np.concatenate([self._x, x])
        if self.metric == "l2":
            self._sq = np.concatenate([self._sq, np.einsum("ij,ij->i", x, x)])
        self.attributes._append(encoded, x.shape[0])
        if self._needs_graph():
            if self.graph is None:
                self.graph = graph_class()(self.dim, metric=self.metric, **self._graph_params)
            self.graph.extend(self.vectors)

    def _remove(self, positions: I64) -> None:
        if self.graph is not None:
            self.graph.remove(self.vectors, positions)
        if self.base is not None:
            self.base.remove(self._idmap.take(positions))
        if not self._shares_vectors:
            self._x = np.delete(self._x, positions, axis=0)
        if self.metric == "l2":
            self._sq = np.delete(self._sq, positions)
        self.attributes.remove(positions)

    def _memory_bytes(self) -> int:
        total = self.attributes.memory_bytes() + int(self._sq.nbytes)
        total += 0 if self.base is None else self.base.memory_bytes()
        total += 0 if self._shares_vectors else int(self._x.nbytes)
        total += 0 if self.graph is None else self.graph.memory_bytes()
        return total

    def disk_bytes(self) -> int:
        return 0 if self.base is None else self.base.disk_bytes()
