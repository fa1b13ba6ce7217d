"""``HNSW{M}``: a hierarchical navigable small-world graph over float32 or int8 codes.

Paper: Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using
Hierarchical Navigable Small World graphs", TPAMI 2018 (arXiv:1603.09320).

Spec forms (parsed by :mod:`embedlab.index.factory`): ``HNSW32`` (float32 vectors, faiss'
``IndexHNSWFlat``), ``HNSW32,Int8`` (one byte per dimension, ``IndexHNSWSQ`` with
``QT_8bit``), each optionally with keywords ``HNSW32(efConstruction=80,efSearch=64)`` and a
``Rerank(Flat)`` stage.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Self

import numpy as np

from embedlab._validation import check_int, check_int_in_range
from embedlab.index._base import F32, I64, Metric, VectorIndex, register_index
from embedlab.index._faiss_blob import faiss_from_blob, faiss_to_blob
from embedlab.index._hnsw_faiss import (
    B8,
    copy_int8_ranges,
    faiss,
    faiss_metric,
    graph_memory_bytes,
    make_graph,
    rebuild_graph,
    search_graph,
    set_int8_ranges,
)
from embedlab.index.flat import Flat
from embedlab.index.int8 import Int8

__all__ = ["HNSW"]

#: code indexes an HNSW graph can hold, by spec token
CODES = ("Flat", "Int8")
#: most links per node and layer (``2 M`` on the bottom layer); beyond it a graph costs more
#: memory than the vectors it indexes for any dimension below 4096
MAX_M = 1024
#: removed rows stay in the graph as tombstones until they exceed this share of its rows
COMPACT_SHARE = 0.2
#: how much a search widens ``efSearch`` for queries that found too few allowed rows
_RETRY_GROWTH = 4


@register_index("HNSW")
class HNSW(VectorIndex):
    """HNSW graph index (Malkov & Yashunin 2018) wrapping faiss' ``IndexHNSWFlat`` / ``SQ``.

    Why faiss: its HNSW is the reference implementation (the paper's heuristic neighbour
    selection, layered insertion with per-node locks, SIMD distance kernels) and is already a
    dependency (``PQ`` uses it); a numba re-implementation would repeat it for no gain in
    recall or speed. What this class adds is embedlab's protocol around it: ids (faiss rows
    are row positions), ``metric="cos"`` as inner product on normalised vectors, ``l2`` scores
    as NEGATIVE squared distances, ``efSearch`` per call, removal, persistence without pickle
    (``faiss.serialize_index`` bytes as a uint8 array) and memory accounting.

    Codes: ``code=Flat`` keeps float32 vectors (``4 * dim`` bytes per vector); ``code=Int8``
    keeps one byte per dimension, quantised exactly as :class:`~embedlab.index.int8.Int8`
    does (its calibration, ``minmax`` or ``percentile``, and its zero-range fallback are used:
    the trained ranges are loaded into faiss' ``ScalarQuantizer``, shifted half a step so that
    faiss' ``floor`` encoding equals Int8's rounding). Graph distances are then computed on
    the de-quantised vectors; add ``Rerank(Flat)`` for exact final scores.

    Memory (:meth:`memory_bytes`): codes (``ntotal * code_size``), the graph (faiss'
    ``hnsw.neighbors`` int32 links: ``2 M`` slots on layer 0 plus ``M`` per upper layer of
    each node, on average ``~2.06 M`` for ``M = 32``; ``hnsw.offsets`` 8 bytes and
    ``hnsw.levels`` 4 bytes per node), the Int8 ranges, the tombstones and the ids.

    Removal: faiss' HNSW cannot delete nodes. Removed rows become tombstones that stay in the
    graph (so it stays navigable) but are excluded from results by an ``IDSelectorBitmap``;
    searches then widen ``efSearch`` by ``rows / live rows`` and re-search, 4x wider each
    time, the queries that found fewer than ``k`` live rows. Once tombstones exceed
    :data:`COMPACT_SHARE` (20%) of the graph's rows the graph is rebuilt from the live rows'
    stored vectors (de-quantised codes re-encode to the same codes): the cost of a full
    build, paid once per 20% of rows removed.

    Builds are not bit-reproducible across thread counts (faiss inserts nodes in parallel);
    a saved index is, and loads to identical results.

    Args:
        dim: vector dimension.
        metric: ``"cos"``, ``"ip"`` or ``"l2"`` (scores are negative squared distances).
        code: an empty ``Flat`` (default) or ``Int8`` index with this ``dim`` and ``metric``:
            how the vectors are stored. Int8 is trained by :meth:`train`.
        M: links per node and layer (``2 M`` on layer 0), in [2, 1024].
        efConstruction: candidate list width while inserting (>= 1).
        efSearch: default candidate list width while searching (>= 1; raised to ``k`` when
            smaller, as faiss does). ``search(q, k, efSearch=...)`` overrides it per call and
            must then be >= ``k``.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).standard_normal((2000, 32)).astype("float32")
        >>> index = HNSW(32, metric="l2", M=16); index.add(x)
        >>> scores, ids = index.search(x[:2], k=5, efSearch=32)
        >>> ids[:, 0].tolist(), index.spec()
        ([0, 1], 'HNSW16')
    """

    def __init__(
        self,
        dim: int,
        *,
        metric: Metric = "cos",
        code: VectorIndex | None = None,
        M: int = 32,
        efConstruction: int = 40,
        efSearch: int = 16,
    ) -> None:
        super().__init__(dim, metric=metric)
        self.M = check_int_in_range("M", M, 2, MAX_M)
        self.efConstruction = check_int("efConstruction", efConstruction, min_value=1)
        self.efSearch = check_int("efSearch", efSearch, min_value=1)
        self.code: VectorIndex = Flat(self.dim, metric=self.metric) if code is None else code
        self._check_code(self.code)
        self._trained = self.code.is_trained
        self._index: Any = self._make()
        self._dead: B8 | None = None  # tombstones over faiss rows; None when there are none

    # -------------------------------------------------------------- construction
    def _check_code(self, code: Any) -> None:
        if type(code) not in (Flat, Int8):
            name = code.spec() if isinstance(code, VectorIndex) else type(code).__name__
            raise ValueError(
                f"code must be an empty Flat or Int8 index (specs HNSW{{M}} or HNSW{{M}},Int8), "
                f"got {name!r}"
            )
        if code.dim != self.dim or code.metric != self.metric:
            raise ValueError(
                f"code must have dim={self.dim} and metric={self.metric!r}, got "
                f"dim={code.dim} and metric={code.metric!r}"
            )
        if code.ntotal:
            raise ValueError(f"code must be empty, got an index holding {code.ntotal}")

    @property
    def code_name(self) -> str:
        """``"Flat"`` or ``"Int8"``."""
        return "Int8" if isinstance(self.code, Int8) else "Flat"

    @property
    def _faiss_metric(self) -> int:
        return faiss_metric(self.metric)

    def _make(self) -> Any:
        return make_graph(
            self.dim,
            self.M,
            self.metric,
            int8=self.code_name == "Int8",
            ef_construction=self.efConstruction,
            ef_search=self.efSearch,
        )

    def _load_ranges(self, index: Any) -> None:
        """Give faiss' scalar quantiser the ranges of the trained Int8 code index (see
        :func:`embedlab.index._hnsw_faiss.set_int8_ranges`)."""
        code = self.code
        if not isinstance(code, Int8):  # pragma: no cover - only called for Int8 codes
            raise TypeError(f"ranges come from an Int8 code index, got {type(code).__name__}")
        lo = code.decode(np.zeros((1, self.dim), np.uint8))[0].astype(np.float64)
        step = code.decode(np.ones((1, self.dim), np.uint8))[0] - lo
        set_int8_ranges(index, lo, step)

    @property
    def faiss_index(self) -> Any:
        """The wrapped faiss index; its rows include tombstones (see :attr:`n_rows`)."""
        return self._index

    @property
    def n_rows(self) -> int:
        """Rows of the faiss graph, removed rows not yet compacted included."""
        return int(self._index.ntotal)

    # ---------------------------------------------------------------------- info
    def spec(self) -> str:
        kw = [
            f"{name}={value}"
            for name, value, default in (
                ("efConstruction", self.efConstruction, 40),
                ("efSearch", self.efSearch, 16),
            )
            if value != default
        ]
        own = f"HNSW{self.M}" + (f"({','.join(kw)})" if kw else "")
        return own if self.code_name == "Flat" else f"{own},{self.code.spec()}"

    def _min_train_points(self) -> int:
        return self.code._min_train_points()

    def search_params(self) -> frozenset[str]:
        return frozenset({"efSearch"})

    # --------------------------------------------------------------------- hooks
    def _train(self, x: F32) -> None:
        if self.code_name == "Flat":
            return
        if self.ntotal:
            raise ValueError(
                f"{self.spec()} already holds {self.ntotal} vectors; train a new index instead"
            )
        self.code.train(x)
        self._index = self._make()
        self._load_ranges(self._index)

    def _add(self, x: F32, ids: I64) -> None:
        self._index.add(np.ascontiguousarray(x))
        if self._dead is not None:
            self._dead = np.concatenate([self._dead, np.zeros(x.shape[0], np.bool_)])

    def _search(self, q: F32, k: int, **params: Any) -> tuple[F32, I64]:
        ef = self.check_ef(params.get("efSearch"), k)
        return self.search_positions(q, k, ef=ef)

    def check_ef(self, ef: Any, k: int) -> int:
        """The search width for ``k`` results: ``ef`` (must be >= ``k``) or the default."""
        if ef is None:
            return max(self.efSearch, k)
        ef = check_int("efSearch", ef, min_value=1)
        if ef < k:
            raise ValueError(
                f"efSearch (the search width) must be >= k (the results asked for), got "
                f"efSearch={ef} and k={k}"
            )
        return int(ef)

    def search_positions(
        self, q: F32, k: int, *, ef: int | None = None, mask: B8 | None = None
    ) -> tuple[F32, I64]:
        """Graph search returning ROW POSITIONS, optionally restricted to ``mask``.

        Args:
            q: prepared queries ``(n_q, dim)`` float32 (normalised for ``metric="cos"``).
            k: results per query, ``1 <= k``.
            ef: search width (default ``max(efSearch, k)``).
            mask: ``(ntotal,)`` bool over row positions; only rows where it is True are
                returned (faiss ``IDSelectorBitmap``: other nodes are still traversed, so
                a selective mask needs a wide ``ef``). Queries that reach fewer than
                ``min(k, allowed rows)`` allowed rows are searched again, ``ef`` x4 each
                time up to the graph's size.

        Returns:
            ``(scores (n_q, k), positions (n_q, k))`` best first, ``-inf`` / ``-1`` where
            fewer than ``k`` allowed rows were reached.
        """
        n_q = q.shape[0]
        ef = max(self.efSearch, k) if ef is None else max(int(ef), k)
        allowed = self._allowed(mask)
        n_allowed = self.ntotal if allowed is None else int(np.count_nonzero(allowed))
        out_s = np.full((n_q, k), -np.inf, np.float32)
        out_p = np.full((n_q, k), -1, np.int64)
        if n_allowed == 0 or n_q == 0:
            return out_s, out_p
        want = min(k, n_allowed)
        if self._dead is not None:
            # Tombstones are traversed but never returned: widen the search for them.
            ef = math.ceil(ef * self.n_rows / max(1, self.n_rows - int(self._dead.sum())))
        ef = min(ef, self.n_rows)
        pending = np.arange(n_q)
        while pending.size:
            s, rows = search_graph(self._index, q[pending], k, max(ef, k), allowed, self.metric)
            found = (rows >= 0).sum(axis=1)
            done = (found >= want) | (ef >= self.n_rows)
            out_s[pending[done]] = s[done]
            out_p[pending[done]] = rows[done]
            pending = pending[~done]
            ef = min(self.n_rows, ef * _RETRY_GROWTH)
        if self._dead is not None:
            out_p = np.where(out_p >= 0, self._positions_of_rows()[np.maximum(out_p, 0)], -1)
        # Best first, ties by position, so results do not depend on faiss' heap order.
        order = np.lexsort((np.where(out_p < 0, np.iinfo(np.int64).max, out_p), -out_s), axis=-1)
        return np.take_along_axis(out_s, order, 1), np.take_along_axis(out_p, order, 1)

    def _allowed(self, mask: B8 | None) -> B8 | None:
        """Allowed faiss rows ``(n_rows,)`` for a position mask (``None``: all rows)."""
        if mask is not None:
            mask = np.asarray(mask, dtype=np.bool_)
            if mask.shape != (self.ntotal,):
                raise ValueError(
                    f"mask must be a boolean array of shape ({self.ntotal},), got {mask.shape}"
                )
        if self._dead is None:
            return mask
        live = ~self._dead
        if mask is None:
            return live
        allowed = np.zeros(self.n_rows, np.bool_)
        allowed[live] = mask
        return allowed

    def _positions_of_rows(self) -> I64:
        """Row position of each faiss row (a tombstone maps to the live row before it)."""
        dead = np.zeros(self.n_rows, np.bool_) if self._dead is None else self._dead
        return np.cumsum(~dead, dtype=np.int64) - 1

    def _remove(self, positions: I64) -> None:
        dead = np.zeros(self.n_rows, np.bool_) if self._dead is None else self._dead.copy()
        live_rows = np.flatnonzero(~dead)
        dead[live_rows[positions]] = True
        if int(dead.sum()) > COMPACT_SHARE * self.n_rows:
            self._rebuild(np.flatnonzero(~dead))
        else:
            self._dead = dead

    def _rebuild(self, keep_rows: I64) -> None:
        """A new graph over the faiss rows ``keep_rows`` (their stored vectors, in order)."""
        index = self._make()
        if self.code_name == "Int8":
            copy_int8_ranges(self._index, index)
        rebuild_graph(self._index, index, keep_rows, self.dim)
        self._index = index
        self._dead = None

    def _memory_bytes(self) -> int:
        dead = 0 if self._dead is None else int(self._dead.nbytes)
        return graph_memory_bytes(self._index, int8=self.code_name == "Int8") + dead

    # --------------------------------------------------------------- persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        blob = faiss_to_blob(self._index)
        dead = np.zeros(0, np.int64) if self._dead is None else np.flatnonzero(self._dead)
        meta: dict[str, Any] = {
            "M": self.M,
            "efConstruction": self.efConstruction,
            "efSearch": self.efSearch,
            "code": self.code_name,
            "rows": self.n_rows,
        }
        if isinstance(self.code, Int8):
            meta["calibration"] = self.code.calibration
            meta["percentile"] = self.code.percentile
        return {"faiss_index": blob, "dead_rows": dead.astype(np.int64)}, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        dim, metric = meta["dim"], meta["metric"]
        if meta["code"] == "Int8":
            code: VectorIndex = Int8(
                dim, metric=metric, calibration=meta["calibration"], percentile=meta["percentile"]
            )
        elif meta["code"] == "Flat":
            code = Flat(dim, metric=metric)
        else:
            raise ValueError(f"code must be one of {', '.join(CODES)}, got {meta['code']!r}")
        obj = cls(
            dim,
            metric=metric,
            code=code,
            M=meta["M"],
            efConstruction=meta["efConstruction"],
            efSearch=meta["efSearch"],
        )
        index = faiss_from_blob(arrays["faiss_index"], folder)
        want = faiss.IndexHNSWSQ if meta["code"] == "Int8" else faiss.IndexHNSWFlat
        if (
            not isinstance(index, want)
            or index.d != dim
            or index.ntotal != meta["rows"]
            or int(index.metric_type) != obj._faiss_metric
            or index.hnsw.nb_neighbors(0) != 2 * obj.M
        ):
            raise ValueError(
                f"{folder}: the saved faiss index ({type(index).__name__}, dim {index.d}, "
                f"{index.ntotal} rows) does not match index.json ({want.__name__}, dim {dim}, "
                f"{meta['rows']} rows, M={obj.M}, metric {metric!r})"
            )
        dead = np.asarray(arrays["dead_rows"])
        if dead.dtype != np.int64 or dead.ndim != 1:
            raise ValueError(f"dead_rows must be a 1-d int64 array, got {dead.dtype} {dead.shape}")
        if dead.size and (
            int(dead.min()) < 0 or int(dead.max()) >= index.ntotal or np.any(np.diff(dead) <= 0)
        ):
            raise ValueError(f"{folder}: dead_rows must be sorted unique rows of the graph")
        obj._index = index
        if dead.size:
            obj._dead = np.zeros(index.ntotal, np.bool_)
            obj._dead[dead] = True
        return obj
