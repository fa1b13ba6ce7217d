"""The ids of an index's rows: :class:`IdMap` (re-exported by :mod:`._base`)."""

from __future__ import annotations

from typing import cast

import numpy as np

from embedlab._validation import check_unique_ids
from embedlab.index._grow import GrowingArray
from embedlab.index._types import I64

__all__ = ["INT64_MAX", "IdMap"]

INT64_MAX = int(np.iinfo(np.int64).max)


class IdMap:
    """Ids of the stored rows in row order, with vectorised id -> row lookup and removal.

    While the ids are the row numbers ``0..n-1`` (the default sequential ids, as in faiss)
    no array is held: :meth:`take` and :meth:`lookup` are arithmetic and :attr:`nbytes` is
    0. The first id that breaks the pattern (or a removal) materialises the array.

    Example:
        >>> m = IdMap(); m.append(np.array([5, 7])); m.lookup(np.array([7, 3])).tolist()
        [1, -1]
    """

    def __init__(self, ids: np.ndarray | None = None, *, next_id: int | None = None) -> None:
        self._store: GrowingArray | None = None
        self._n = 0  # rows while implicit (self._store is None)
        self._sorted: tuple[I64, I64] | None = None
        top = 0
        if ids is not None:
            arr = np.ascontiguousarray(ids, dtype=np.int64)
            n = int(arr.shape[0])
            if n and not (int(arr[0]) == 0 and int(arr[-1]) == n - 1 and _is_range(arr)):
                self._store = GrowingArray((), np.int64)
                self._store.set(arr)
            else:
                self._n = n
            top = int(arr.max()) + 1 if n else 0
        self.next_id = top if next_id is None else max(int(next_id), top)

    def _materialise(self) -> GrowingArray:
        if self._store is None:
            self._store = GrowingArray((), np.int64)
            self._store.set(np.arange(self._n, dtype=np.int64))
        return self._store

    @property
    def _ids(self) -> I64:
        if self._store is None:
            return np.arange(self._n, dtype=np.int64)
        return cast(I64, self._store.data)

    @property
    def ids(self) -> I64:
        """The ids in row order (read-only; built on the fly while implicit)."""
        view = self._ids.view()
        view.flags.writeable = False
        return view

    def take(self, positions: np.ndarray) -> I64:
        """Ids at row ``positions`` (any shape; every position must be a valid row)."""
        if self._store is None:
            return np.asarray(positions, dtype=np.int64).copy()
        return cast(I64, self._store.data[positions])

    def __len__(self) -> int:
        return self._n if self._store is None else len(self._store)

    @property
    def implicit(self) -> bool:
        """True while the ids are the row numbers ``0..n-1`` and no array is held."""
        return self._store is None

    @property
    def nbytes(self) -> int:
        """RAM bytes of the id array (0 while :attr:`implicit`)."""
        return 0 if self._store is None else self._store.nbytes

    def new_ids(self, n: int) -> I64:
        """``n`` fresh sequential ids after the largest id this map has held."""
        if self.next_id + n - 1 > INT64_MAX:
            raise ValueError(
                f"cannot give {n} vectors sequential ids after id {self.next_id - 1}: ids end "
                f"at 2**63 - 1; pass ids= explicitly"
            )
        return np.arange(self.next_id, self.next_id + n, dtype=np.int64)

    def check_new(self, ids: I64) -> None:
        """``ids`` must be unique and not already stored; the error names one offender."""
        check_unique_ids("ids", ids)
        if len(self) and ids.size:
            present = self.lookup(ids) >= 0
            if present.any():
                raise ValueError(
                    f"ids must be unique, got id {int(ids[np.argmax(present)])} "
                    "which is already in the index"
                )

    def append(self, ids: I64) -> None:
        ids = ids.astype(np.int64, copy=False)
        m = int(ids.shape[0])
        if not m:
            return
        if (
            self._store is None
            and int(ids[0]) == self._n
            and int(ids[-1]) == self._n + m - 1
            and _is_range(ids)
        ):
            self._n += m
        else:
            self._materialise().append(ids)
        self._sorted = None
        self.next_id = max(self.next_id, int(ids.max()) + 1)

    def lookup(self, ids: np.ndarray) -> I64:
        """Row positions of ``ids`` (any shape); ``-1`` where an id is absent (or ``-1``)."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(self):
            return np.full(ids.shape, -1, np.int64)
        if self._store is None:
            return np.where((ids >= 0) & (ids < self._n), ids, -1).astype(np.int64)
        if self._sorted is None:
            order = np.argsort(self._store.data, kind="stable")
            self._sorted = (self._store.data[order], order.astype(np.int64))
        sorted_ids, order = self._sorted
        idx = np.searchsorted(sorted_ids, ids)
        idx = np.minimum(idx, sorted_ids.shape[0] - 1)
        found = sorted_ids[idx] == ids
        return np.where(found, order[idx], -1).astype(np.int64)

    def delete(self, positions: I64) -> None:
        self._materialise().delete(positions)
        self._sorted = None


def _is_range(ids: np.ndarray) -> bool:
    """``ids`` increase by exactly 1 from one row to the next."""
    return ids.size < 2 or bool(np.all(np.diff(ids) == 1))
