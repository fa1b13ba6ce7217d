"""Storage of the inverted lists of :class:`embedlab.index.ivf.IVF`: one codes array, one
region per list.

List ``l`` holds ``sizes[l]`` codes at ``codes[starts[l] : starts[l] + sizes[l]]`` inside a
region of ``caps[l]`` slots (the scan kernels take the arrays as they are). ``rows[slot]``
is the index row (insertion-order position) of the code in that slot.

Adding is amortised ``O(n)``, never a copy of everything per call: a list that outgrows its
region moves to the free tail of the array with ``GROWTH`` times the room; the array is
rebuilt (lists packed, garbage dropped) only when the tail is full, and then gets
``SLACK`` spare room, so rebuilds are geometrically rare. A first fill of an empty store
(the usual bulk add, :meth:`InvertedLists.reserve` first) is packed exactly, with no spare
room. ``remove`` packs the lists too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from embedlab.index._base import F32, I64

__all__ = ["InvertedLists"]

I32 = npt.NDArray[np.int32]
GROWTH = 1.5  # room of a list's new region, relative to its old one
SLACK = 0.25  # spare room given to the array when it is rebuilt for an add
MAX_ROWS = int(np.iinfo(np.int32).max)  # rows are int32: 4 bytes per vector


@dataclass
class InvertedLists:
    """Codes ``(capacity, width)`` of any dtype, grouped by list.

    Args:
        nlist: number of lists.
        width: entries per code (bytes for uint8 codes, dimensions for float32 vectors).
        dtype: code dtype.
        per_code: names of the float32 per-code arrays kept with the codes
            (``"vbias"``, ``"vscale"``).
    """

    nlist: int
    width: int
    dtype: np.dtype
    per_code: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.codes: np.ndarray = np.zeros((0, self.width), self.dtype)
        self.rows: I32 = np.zeros(0, np.int32)
        self.extra: dict[str, F32] = {name: np.zeros(0, np.float32) for name in self.per_code}
        self.starts: I64 = np.zeros(self.nlist, np.int64)
        self.sizes: I64 = np.zeros(self.nlist, np.int64)
        self.caps: I64 = np.zeros(self.nlist, np.int64)
        self.used = 0  # end of the allocated regions

    @property
    def ntotal(self) -> int:
        return int(self.sizes.sum())

    @property
    def nbytes(self) -> int:
        """RAM bytes of the arrays as allocated (codes, rows, per-code arrays, list table)."""
        lists = self.starts.nbytes + self.sizes.nbytes + self.caps.nbytes
        extra = sum(a.nbytes for a in self.extra.values())
        return int(self.codes.nbytes + self.rows.nbytes + extra + lists)

    # ----------------------------------------------------------------- adding
    def reserve(self, counts: I64) -> None:
        """Make room for ``counts[l]`` more codes in each list ``l`` (``(nlist,)``), so the
        adds that follow move nothing. Into an empty store the lists are packed exactly."""
        touched = np.flatnonzero(counts)
        self._make_room(touched, counts[touched])

    def _make_room(self, uniq: I64, counts: I64) -> None:
        need = self.sizes[uniq] + counts
        grow = need > self.caps[uniq]
        new_caps = np.maximum(need, np.ceil(self.caps[uniq] * GROWTH).astype(np.int64))
        room = int(new_caps[grow].sum())
        if self.used + room > self.codes.shape[0]:
            caps = self.caps.copy()
            caps[uniq[grow]] = new_caps[grow]
            self._rebuild(caps, spare=self.ntotal > 0)
        else:
            for lst, cap in zip(uniq[grow].tolist(), new_caps[grow].tolist(), strict=True):
                self._move(lst, self.used, cap)
                self.used += cap

    def add(self, lists: I64, codes: np.ndarray, rows: I64, extra: dict[str, F32]) -> None:
        """Append codes ``(n, width)`` to ``lists (n,)`` with their ``rows (n,)``."""
        if int(rows.max(initial=-1)) > MAX_ROWS:
            raise ValueError(f"IVF holds at most {MAX_ROWS} vectors, got row {int(rows.max())}")
        order = np.argsort(lists, kind="stable")
        uniq, first, counts = np.unique(lists[order], return_index=True, return_counts=True)
        self._make_room(uniq, counts)
        # write the new codes after each list's current end
        dest = self.starts[uniq] + self.sizes[uniq]  # (n_lists_touched,)
        slots = np.repeat(dest - first, counts) + np.arange(order.size)  # (n,) in sorted order
        self.codes[slots] = codes[order]
        self.rows[slots] = rows[order]
        for name, values in extra.items():
            self.extra[name][slots] = values[order]
        self.sizes[uniq] += counts

    def _move(self, lst: int, start: int, cap: int) -> None:
        """Copy list ``lst`` to a region of ``cap`` slots at ``start`` (inside the array)."""
        old, size = int(self.starts[lst]), int(self.sizes[lst])
        src, dst = slice(old, old + size), slice(start, start + size)
        self.codes[dst] = self.codes[src]
        self.rows[dst] = self.rows[src]
        self.rows[src] = -1
        for arr in self.extra.values():
            arr[dst] = arr[src]
        self.starts[lst], self.caps[lst] = start, cap

    def _rebuild(self, caps: I64, *, spare: bool) -> None:
        """Pack every list into a new array with regions of ``caps`` slots."""
        starts = np.concatenate([[0], np.cumsum(caps)[:-1]]).astype(np.int64)
        total = int(caps.sum())
        capacity = total + (int(np.ceil(total * SLACK)) if spare else 0)
        src = self._live_slots()
        dst = np.repeat(starts, self.sizes) + _ranks(self.sizes)
        codes = np.zeros((capacity, self.width), self.dtype)
        codes[dst] = self.codes[src]
        rows = np.full(capacity, -1, np.int32)
        rows[dst] = self.rows[src]
        for name, arr in self.extra.items():
            new = np.zeros(capacity, np.float32)
            new[dst] = arr[src]
            self.extra[name] = new
        self.codes, self.rows = codes, rows
        self.starts, self.caps, self.used = starts, caps.astype(np.int64), total

    def _live_slots(self) -> I64:
        """Slots holding codes, list by list: ``(ntotal,)``."""
        return np.repeat(self.starts, self.sizes) + _ranks(self.sizes)

    # --------------------------------------------------------------- removing
    def remove(self, positions: I64) -> None:
        """Drop the codes of rows ``positions`` (sorted, unique), renumber the rest, pack."""
        slots = self._live_slots()
        rows = self.rows[slots].astype(np.int64)
        gone = np.isin(rows, positions, assume_unique=True)
        lists = np.repeat(np.arange(self.nlist), self.sizes)
        keep = slots[~gone]
        kept_rows = rows[~gone]
        kept_rows -= np.searchsorted(positions, kept_rows)  # rows above a removed one shift
        sizes = np.bincount(lists[~gone], minlength=self.nlist).astype(np.int64)
        self.set_packed(
            self.codes[keep],
            kept_rows,
            sizes,
            {name: arr[keep] for name, arr in self.extra.items()},
        )

    # ------------------------------------------------------------ persistence
    def packed(self) -> tuple[np.ndarray, I64, I64, dict[str, F32]]:
        """``(codes (ntotal, width), rows (ntotal,) int64, sizes (nlist,), per-code arrays)``
        with the codes list by list."""
        slots = self._live_slots()
        extra = {name: arr[slots] for name, arr in self.extra.items()}
        return self.codes[slots], self.rows[slots].astype(np.int64), self.sizes.copy(), extra

    def set_packed(self, codes: np.ndarray, rows: I64, sizes: I64, extra: dict[str, F32]) -> None:
        """Replace the content with packed arrays (as :meth:`packed` returns them)."""
        self.codes = np.ascontiguousarray(codes, dtype=self.dtype)
        self.rows = np.ascontiguousarray(rows, dtype=np.int32)
        self.extra = {name: np.ascontiguousarray(extra[name], np.float32) for name in self.per_code}
        self.sizes = np.asarray(sizes, np.int64).copy()
        self.caps = self.sizes.copy()
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.used = int(self.sizes.sum())


def _ranks(sizes: I64) -> I64:
    """``0 .. sizes[l] - 1`` for every list, concatenated: ``(sum(sizes),)``."""
    total = int(sizes.sum())
    ends = np.cumsum(sizes)
    return np.arange(total, dtype=np.int64) - np.repeat(ends - sizes, sizes)
