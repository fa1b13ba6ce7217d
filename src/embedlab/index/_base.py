"""The one protocol every vector index follows, the index registry and shared helpers.

Every index stores rows in insertion order; row ``i`` of a subclass' storage belongs to
``self._idmap.ids[i]``. The public methods validate and normalise their input, then call the
subclass hooks with clean float32 arrays:

- ``_train(x)``: ``x (n, dim)`` float32, already L2-normalised for ``metric="cos"``.
- ``_add(x, ids)``: append the rows of ``x`` to the storage (``ids`` for information; the base
  records them after ``_add`` returns).
- ``_search(q, k, **params) -> (scores (n_q, k'), positions (n_q, k'))`` with ``k' <= k``
  and ``1 <= k <= ntotal``: ROW POSITIONS (not ids; ``-1`` for a missing result), higher
  score = better. The base maps positions to ids and pads to ``k``. ``params`` (only passed
  when given) are the search-time settings named by ``search_params()``, checked already.
- ``_remove(positions)``: delete those rows (sorted, unique), keeping the others in order.
- ``_memory_bytes()``: RAM bytes of codes, codebooks, models (the base adds the ids).
- ``_state() -> (arrays, meta)`` / ``_from_state(arrays, meta, folder)``: persistence, see
  :mod:`embedlab.index.io`. ``arrays`` are saved as ``.npy`` (names are identifiers, ``ids``
  is reserved); ``meta`` must be JSON (keys ``dim`` and ``metric`` are reserved: on load they
  are added to ``meta`` so ``_from_state`` can call ``cls(meta["dim"], metric=meta["metric"],
  ...)``). Ids and the trained flag are restored by the loader after ``_from_state``.
- ``_children()``: nested indexes (saved in sub-folders named by the keys; load them in
  ``_from_state`` with ``embedlab.index.io.load_child(folder, name)``).
- ``_after_save(folder)``: called once the index was saved into ``folder``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar, cast

import numpy as np

from embedlab._registry import Registry
from embedlab._validation import check_choice, check_int, check_vector_ids, check_vectors
from embedlab.index._batches import add_in_blocks
from embedlab.index._idmap import INT64_MAX, IdMap
from embedlab.index._rows import (
    MAX_NORM,
    l2_normalize,
    merge_topk,
    pad_results,
    row_norms,
    topk_rows,
)
from embedlab.index._save import save_index
from embedlab.index._types import F32, I64

__all__ = [
    "F32",
    "I64",
    "INDEXES",
    "INT64_MAX",
    "MAX_NORM",
    "MAX_PADDING",
    "METRICS",
    "IdMap",
    "Metric",
    "VectorIndex",
    "ids_set_aside",
    "l2_normalize",
    "merge_topk",
    "normalize_metric",
    "pad_results",
    "register_index",
    "row_norms",
    "topk_rows",
]

Metric = Literal["ip", "l2", "cos"]
METRICS: tuple[str, ...] = ("cos", "ip", "l2")

ClsT = TypeVar("ClsT", bound="type[VectorIndex]")

#: results of a search are padded with ``-1`` up to ``k`` columns, but past ``ntotal`` only
#: up to this many (``search(q, k=10**9)`` on 50 vectors returns 1024 columns, not 10**9)
MAX_PADDING = 1024

INDEXES: Registry[type[VectorIndex]] = Registry("index")


def register_index(name: str) -> Any:
    """Class decorator: register an index class under its spec token base name (``"Flat"``)."""

    def deco(cls: ClsT) -> ClsT:
        cls.index_name = name
        INDEXES.register(name)(cls)
        return cls

    return deco


def normalize_metric(metric: Any) -> Metric:
    """``metric`` checked against ``ip``, ``l2``, ``cos`` (the error lists them)."""
    return cast(Metric, check_choice("metric", metric, METRICS))


@contextmanager
def ids_set_aside(index: VectorIndex) -> Iterator[None]:
    """Let a loaded, filled child pass a wrapper constructor's "must be empty" check.

    The child's ids are swapped for an empty map inside the block and put back after it.
    """
    ids, index._idmap = index._idmap, IdMap()
    try:
        yield
    finally:
        index._idmap = ids


class VectorIndex:
    """Base class of every vector index: ``train / add / search / remove / save``.

    Args:
        dim: vector dimension.
        metric: ``"cos"`` (cosine; vectors normalised on add and query), ``"ip"`` (dot
            product) or ``"l2"`` (scores are NEGATIVE squared distances). Higher score is
            better for every metric.

    Search returns ``(scores (n_q, k) float32, ids (n_q, k) int64)``; when the index holds
    fewer than ``k`` vectors the missing results have id ``-1`` and score ``-inf``.
    """

    needs_training: ClassVar[bool] = False
    index_name: ClassVar[str] = ""
    disk_arrays: ClassVar[frozenset[str]] = frozenset()
    """Names of ``_state`` arrays that are loaded memory-mapped (``mmap_mode="r"``)."""

    def __init__(self, dim: int, *, metric: Metric = "cos") -> None:
        self.dim = check_int("dim", dim, min_value=1)
        self.metric: Metric = normalize_metric(metric)
        self._idmap = IdMap()
        self._trained = not self.needs_training

    # ----------------------------------------------------------------- public protocol
    @property
    def is_trained(self) -> bool:
        """Whether vectors can be added: always for indexes that need no training, else once
        :meth:`train` ran.
        """
        return self._trained

    @property
    def ntotal(self) -> int:
        """Number of vectors the index holds."""
        return len(self._idmap)

    @property
    def ids(self) -> I64:
        """Ids of the stored vectors in insertion order (read-only)."""
        return self._idmap.ids

    def spec(self) -> str:
        """The factory spec string of this index (override for parametric tokens)."""
        return self.index_name or type(self).__name__

    def train(self, x: Any) -> None:
        """Fit the quantiser on ``x (n, dim)``; a no-op for indexes that need no training."""
        self._train_prepared(self._prepare(x, "x"))

    def _train_prepared(self, x: F32) -> None:
        """:meth:`train` on vectors already checked and prepared by :meth:`_prepare`."""
        need = self._min_train_points()
        if x.shape[0] < need:
            raise ValueError(
                f"{self.spec()} needs at least {need} training vectors, got {x.shape[0]}"
            )
        if self.needs_training and self.ntotal:
            raise ValueError(
                f"{self.spec()} already holds {self.ntotal} vectors; train a new index instead"
            )
        self._train(x)
        self._trained = True

    def add(self, x: Any, ids: Any = None) -> None:
        """Add vectors ``x (n, dim)`` with ``ids (n,)`` int64 (default: sequential ids)."""
        self._add_prepared(self._prepare(x, "x"), ids)

    def _add_prepared(self, x: F32, ids: Any = None) -> None:
        """:meth:`add` of vectors already checked and prepared by :meth:`_prepare`."""
        n = x.shape[0]
        if ids is None:
            id_arr = self._idmap.new_ids(n)
        else:
            id_arr = check_vector_ids("ids", ids, n)
            self._idmap.check_new(id_arr)
        if not self.is_trained:
            raise ValueError(f"{self.spec()} must be trained before add: call train(x) first")
        if n == 0:
            return
        self._add(x, id_arr)
        self._idmap.append(id_arr)

    def add_batches(self, batches: Iterable[Any]) -> int:
        """Add vectors batch by batch; returns how many.

        Each item is ``x (n, dim)`` or ``(x, ids)``. Storage grows geometrically, so a build
        from many batches costs about one ``add`` of everything (no copy per batch), and
        batches smaller than 16 MB are gathered into blocks of that size before they are
        added (one ``add`` per block: see :mod:`embedlab.index._batches`). With
        :func:`embedlab.data.iter_npy_shards` this builds from a folder of ``.npy`` shards in
        memory bounded by the index plus one chunk. A bad batch raises (naming its number);
        the batches before it stay added.
        """
        return self._add_batches(batches)

    def _add_batches(self, batches: Iterable[Any], *, inplace: bool = False) -> int:
        """:meth:`add_batches`; ``inplace=True`` normalises batches the caller owns in place."""
        if type(self).add is not VectorIndex.add:  # a subclass's own add sees every batch
            return add_in_blocks(batches, self.dim, None, self.add)
        prepare = partial(self._prepare, inplace=True) if inplace else self._prepare
        return add_in_blocks(batches, self.dim, prepare, self._add_prepared)

    def search(self, q: Any, k: int, **params: Any) -> tuple[F32, I64]:
        """The ``k`` best vectors per query ``q (n_q, dim)``: ``(scores, ids)``, each (n_q, k).

        ``params`` are search-time settings of indexes that have them (``nprobe=`` for
        ``IVF``, ``efSearch=`` for ``HNSW``); see :meth:`search_params`.
        """
        k = check_int("k", k, min_value=1)
        self._check_search_params(params)
        q = self._prepare(q, "queries")
        k = self.result_width(k)
        kk = min(k, self.ntotal)
        if kk == 0 or q.shape[0] == 0:
            return pad_results(
                np.zeros((q.shape[0], 0), np.float32), np.zeros((q.shape[0], 0), np.int64), k
            )
        scores, pos = self._search(q, kk, **params) if params else self._search(q, kk)
        pos = np.asarray(pos, dtype=np.int64)
        ids = np.where(pos >= 0, self._idmap.take(np.maximum(pos, 0)), -1)
        return pad_results(np.asarray(scores, dtype=np.float32), ids, k)

    def search_params(self) -> frozenset[str]:
        """Names of the keyword settings :meth:`search` takes (none by default)."""
        return frozenset()

    def _check_search_params(self, params: dict[str, Any]) -> None:
        bad = sorted(set(params) - self.search_params())
        if bad:
            valid = ", ".join(sorted(self.search_params())) or "none"
            raise ValueError(
                f"search parameter {bad[0]!r} is not taken by {self.spec()}; valid: {valid}"
            )

    def result_width(self, k: int) -> int:
        """Columns of a search result for ``k``: ``k``, but never more than
        ``max(ntotal, MAX_PADDING)`` — results past ``ntotal`` can only be ``-1``, so a huge
        ``k`` allocates by the index size, not by ``k``."""
        return min(int(k), max(self.ntotal, MAX_PADDING))

    def remove(self, ids: Any) -> int:
        """Remove the vectors with these ids; returns how many were removed."""
        id_arr = np.unique(check_vector_ids("ids", ids))
        pos = self._idmap.lookup(id_arr)
        missing = id_arr[pos < 0]
        if missing.size:
            shown = ", ".join(str(int(i)) for i in missing[:10])
            more = f" (and {missing.size - 10} more)" if missing.size > 10 else ""
            raise ValueError(f"ids not in the index: {shown}{more}")
        if not pos.size:
            return 0
        pos = np.sort(pos)
        self._remove(pos)
        self._idmap.delete(pos)
        return int(pos.size)

    def memory_bytes(self) -> int:
        """Bytes held in RAM: codes, ids, codebooks and models."""
        return self._idmap.nbytes + self._memory_bytes()

    def disk_bytes(self) -> int:
        """Bytes kept on disk outside RAM (e.g. memory-mapped full vectors); 0 by default."""
        return 0

    def save(self, path: str | Path, *, overwrite: bool = False) -> None:
        """Save into the folder ``path``; see :func:`embedlab.index.save_index`.

        ``path`` must be new, empty, or hold an embedlab index (then pass ``overwrite=True``);
        the swap is atomic and files the library did not write are never touched.
        """
        save_index(self, path, overwrite=overwrite)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(spec={self.spec()!r}, dim={self.dim}, "
            f"metric={self.metric!r}, ntotal={self.ntotal})"
        )

    # ------------------------------------------------------------------- helpers
    def _prepare(self, x: Any, name: str, *, inplace: bool = False) -> F32:
        """Validate ``x`` as ``(n, dim)`` finite float32 and normalise rows for cosine.

        ``inplace=True`` (for arrays the caller owns, e.g. chunks read from shards)
        normalises a float32 ``x`` itself instead of a copy.
        """
        arr = check_vectors(name, x, self.dim)
        if not arr.shape[0]:
            return arr
        if self.metric == "cos":
            return l2_normalize(arr, inplace=inplace)
        norms = row_norms(arr)
        if float(norms.max()) > MAX_NORM:
            row = int(np.argmax(norms))
            raise ValueError(
                f"{name} row {row} has L2 norm {norms[row]:.3g}; under metric "
                f"{self.metric!r} norms must be <= {MAX_NORM:.3g} or the scores overflow "
                "float32 (rescale the vectors or use metric='cos')"
            )
        return arr

    def _min_train_points(self) -> int:
        """Fewest training vectors ``train`` accepts (0 for indexes that need no training)."""
        return 1 if self.needs_training else 0

    # --------------------------------------------------------------------- hooks
    def _train(self, x: F32) -> None:
        return None

    def _add(self, x: F32, ids: I64) -> None:
        raise NotImplementedError

    def _search(self, q: F32, k: int) -> tuple[F32, I64]:
        raise NotImplementedError

    def _remove(self, positions: I64) -> None:
        raise NotImplementedError

    def _memory_bytes(self) -> int:
        return 0

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        raise NotImplementedError

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        raise NotImplementedError

    def _children(self) -> dict[str, VectorIndex]:
        return {}

    def _after_save(self, folder: Path) -> None:
        return None
