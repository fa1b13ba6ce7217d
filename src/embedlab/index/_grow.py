"""A row array that grows in amortised O(1) per row: the storage behind ``add``.

``np.concatenate`` on every ``add`` copies everything stored so far, so ``n`` adds of ``b``
rows cost O(n^2 * b). :class:`GrowingArray` keeps spare capacity (x1.5 when full, like a
``std::vector``), so appending is amortised O(rows added). ``data`` is a view of the rows
in use; ``nbytes`` counts the whole allocation (what the process holds), and a single add to
an empty array allocates exactly what it needs.

Large buffers are private anonymous memory maps. Growing one this class allocated resizes
the map in place (``mremap`` on Linux): the rows already stored are not copied and the new
capacity is not touched, so it costs no resident memory until rows are written into it.
(``ndarray.resize`` would move the block without copying too, but it zero-fills the new
capacity, which makes every spare byte resident: up to 1.5x the stored rows.) When anything
else holds a view of the buffer, where the platform cannot resize a map, for small buffers,
or when the buffer came from outside (:meth:`GrowingArray.set`), it allocates a new buffer
and copies the rows.
"""

from __future__ import annotations

import contextlib
import mmap
from typing import Any

import numpy as np

__all__ = ["Growing", "GrowingArray", "grow"]

_GROWTH = 1.5
#: buffers from this many bytes on are memory maps that grow in place
_MAP_BYTES = 1 << 20
_MAP_FLAGS = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)


def _mapped(nbytes: int) -> mmap.mmap | None:
    """A private anonymous map of ``nbytes`` (zero pages, not resident), or ``None``."""
    if nbytes < _MAP_BYTES or not hasattr(mmap, "MAP_ANONYMOUS"):
        return None
    try:
        m = mmap.mmap(-1, nbytes, flags=_MAP_FLAGS)
    except (OSError, ValueError):
        return None
    _huge_pages(m)
    return m


def _huge_pages(m: mmap.mmap) -> None:
    """Ask for transparent huge pages, as numpy does for its large arrays (fewer faults)."""
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is not None:
        with contextlib.suppress(OSError):  # THP disabled: plain pages
            m.madvise(advice)


class GrowingArray:
    """Rows of shape ``row_shape`` and dtype ``dtype`` with amortised appends.

    Example:
        >>> a = GrowingArray((2,), np.float32)
        >>> a.append(np.ones((3, 2), np.float32)); a.append(np.zeros((1, 2), np.float32))
        >>> a.data.shape, len(a)
        ((4, 2), 4)
    """

    def __init__(self, row_shape: tuple[int, ...], dtype: Any) -> None:
        self._buf: np.ndarray = np.zeros((0, *row_shape), dtype=dtype)
        self._n = 0
        self._map: mmap.mmap | None = None  # the map behind _buf, when this class made one

    def __len__(self) -> int:
        return self._n

    @property
    def data(self) -> np.ndarray:
        """The rows in use ``(n, *row_shape)`` (a view: valid until the next append)."""
        return self._buf[: self._n]

    @property
    def nbytes(self) -> int:
        """Bytes allocated, spare capacity included."""
        return int(self._buf.nbytes)

    def append(self, rows: np.ndarray) -> None:
        """Append ``rows`` ``(m, *row_shape)``; grows the allocation by x1.5 when full."""
        m = int(rows.shape[0])
        if m == 0:
            return
        need = self._n + m
        if need > self._buf.shape[0]:
            cap = need if self._n == 0 else max(need, int(self._buf.shape[0] * _GROWTH) + 1)
            self._reserve(cap)
        self._buf[self._n : need] = rows
        self._n = need

    def _reserve(self, cap: int) -> None:
        row_shape, dtype = self._buf.shape[1:], self._buf.dtype
        row_bytes = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
        if self._map is not None and row_bytes:
            self._buf = np.zeros((0, *row_shape), dtype=dtype)  # drop our own export of the map
            try:
                self._map.resize(cap * row_bytes)  # mremap: no copy, new pages untouched
                _huge_pages(self._map)
                self._buf = self._view(self._map, cap, row_shape, dtype)
                return
            except (BufferError, OSError, SystemError, ValueError):
                # a view is alive elsewhere, or no in-place resize here: copy instead
                self._buf = self._view(self._map, len(self._map) // row_bytes, row_shape, dtype)
        old = self._buf
        new_map = _mapped(cap * row_bytes)
        if new_map is None:
            buf = np.empty((cap, *row_shape), dtype=dtype)
        else:
            buf = self._view(new_map, cap, row_shape, dtype)
        buf[: self._n] = old[: self._n]
        self._buf, self._map = buf, new_map

    @staticmethod
    def _view(m: mmap.mmap, rows: int, row_shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.frombuffer(
            m, dtype=dtype, count=rows * int(np.prod(row_shape, dtype=np.int64))
        ).reshape(rows, *row_shape)

    def set(self, rows: np.ndarray) -> None:
        """Replace the contents with ``rows`` (kept as given: no copy, no spare capacity)."""
        self._buf = rows
        self._n = int(rows.shape[0])
        self._map = None

    def delete(self, positions: np.ndarray) -> None:
        """Remove the rows at ``positions`` (sorted, unique), keeping the others in order."""
        keep = np.ones(self._n, dtype=bool)
        keep[positions] = False
        kept = self._buf[: self._n][keep]
        self._buf, self._n, self._map = kept, int(kept.shape[0]), None

    def shrink(self) -> None:
        """Drop the spare capacity (one copy)."""
        if self._buf.shape[0] != self._n:
            self._buf, self._map = self._buf[: self._n].copy(), None


class Growing:
    """Descriptor: an array attribute kept in a :class:`GrowingArray`.

    Reading the attribute gives the rows in use; assigning an array replaces the contents
    (so ``self._x = np.delete(self._x, ...)`` keeps working); :func:`grow` gives the
    :class:`GrowingArray` itself, to append or to count its bytes.

    Example:
        >>> class Store:
        ...     rows = Growing()
        ...     def __init__(self): self.rows = np.zeros((0, 3), np.float32)
        >>> s = Store(); grow(s, "rows").append(np.ones((2, 3), np.float32)); s.rows.shape
        (2, 3)
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = f"_growing_{name}"

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        return obj.__dict__[self._key].data

    def __set__(self, obj: Any, value: np.ndarray) -> None:
        arr = np.asarray(value)
        store = obj.__dict__.get(self._key)
        if store is None:
            store = obj.__dict__[self._key] = GrowingArray(arr.shape[1:], arr.dtype)
        store.set(arr)


def grow(obj: Any, name: str) -> GrowingArray:
    """The :class:`GrowingArray` behind the :class:`Growing` attribute ``name`` of ``obj``."""
    store: GrowingArray = obj.__dict__[f"_growing_{name}"]
    return store
