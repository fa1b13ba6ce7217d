"""A row array that grows in amortised O(1) per row: the storage behind ``add``.

``np.concatenate`` on every ``add`` copies everything stored so far, so ``n`` adds of ``b``
rows cost O(n^2 * b). :class:`GrowingArray` keeps spare capacity (x1.5 when full, like a
``std::vector``), so appending is amortised O(rows added). ``data`` is a view of the rows
in use; ``nbytes`` counts the whole allocation (what the process holds), and a single add to
an empty array allocates exactly what it needs.

Growing a buffer this class allocated itself uses ``ndarray.resize``: glibc ``realloc`` moves
a large (mmap-backed) block with ``mremap``, so the rows already stored are not copied. When
anything else holds a view of the buffer (numpy's reference check), or the buffer came from
outside (:meth:`GrowingArray.set`), it falls back to allocate-and-copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Growing", "GrowingArray", "grow"]

_GROWTH = 1.5


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
        self._owned = False  # whether _buf was allocated here (safe to resize in place)

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
        shape = (cap, *self._buf.shape[1:])
        if self._owned and self._n:
            try:
                self._buf.resize(shape, refcheck=True)  # realloc: no copy of the stored rows
                return
            except ValueError:  # a view of the buffer is alive elsewhere: copy instead
                pass
        buf = np.empty(shape, dtype=self._buf.dtype)
        buf[: self._n] = self._buf[: self._n]
        self._buf, self._owned = buf, True

    def set(self, rows: np.ndarray) -> None:
        """Replace the contents with ``rows`` (kept as given: no copy, no spare capacity)."""
        self._buf = rows
        self._n = int(rows.shape[0])
        self._owned = False

    def delete(self, positions: np.ndarray) -> None:
        """Remove the rows at ``positions`` (sorted, unique), keeping the others in order."""
        keep = np.ones(self._n, dtype=bool)
        keep[positions] = False
        kept = self._buf[: self._n][keep]
        self._buf, self._n, self._owned = kept, int(kept.shape[0]), True

    def shrink(self) -> None:
        """Drop the spare capacity (one copy)."""
        if self._buf.shape[0] != self._n:
            self._buf, self._owned = self._buf[: self._n].copy(), True


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
