"""``add_batches``' write buffer: small batches are copied into one block and added together.

Each ``add`` call pays a fixed cost (validation, the id map, a coarse assignment, one call
into faiss whose worker threads wake up and spin): at 2,000 rows a call that is most of the
time of an IVF-PQ add (100 adds of 2,000 rows took 2.1x one add of 200,000 here). A stream
of small batches is therefore copied into a block of about :data:`BLOCK_BYTES` and added
once the block is full, when a batch of the other kind (with or without ids) arrives, and at
the end of the stream. Batches at least as large as the block go straight through (no
copy), so a build from 64k-row chunks holds no more memory than before.

Errors keep their meaning: every batch is validated when it arrives, so a bad batch is named
by its number, and the batches before it are added before the error is raised. When a block
fails as a whole (e.g. an id repeated across two of its batches) it is added batch by batch
instead, so the error names the batch and the ones before it stay added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from embedlab._validation import check_vector_ids

__all__ = ["BLOCK_BYTES", "add_in_blocks"]

#: bytes of vectors gathered before one add (small batches only)
BLOCK_BYTES = 16 << 20

Prepare = Callable[[Any, str], np.ndarray]
AddPrepared = Callable[[Any, Any], None]


def _batch_error(i: int, exc: Exception) -> Exception:
    return type(exc)(f"batch {i}: {exc}")


class _Block:
    """The pending small batches: rows in one buffer, with their batch numbers and ids."""

    def __init__(self, dim: int, rows: int) -> None:
        self.dim, self.capacity = dim, rows
        self.buf: np.ndarray | None = None  # allocated on first use
        self.n = 0
        self.parts: list[tuple[int, int, np.ndarray | None]] = []  # (batch, rows, ids)

    def fits(self, rows: int, with_ids: bool) -> bool:
        if not self.parts:
            return True
        return self.n + rows <= self.capacity and (self.parts[0][2] is not None) == with_ids

    def push(self, i: int, x: np.ndarray, ids: np.ndarray | None) -> None:
        if self.buf is None:
            self.buf = np.empty((self.capacity, self.dim), np.float32)
        self.buf[self.n : self.n + x.shape[0]] = x
        self.n += x.shape[0]
        self.parts.append((i, x.shape[0], ids))

    def flush(self, add: AddPrepared) -> None:
        if not self.parts:
            return
        assert self.buf is not None  # parts were pushed
        rows, parts = self.buf[: self.n], self.parts
        # a fresh buffer for the next block: an index may keep a view of what it was given
        self.buf, self.n, self.parts = None, 0, []
        ids = None if parts[0][2] is None else np.concatenate([p[2] for p in parts])  # type: ignore[misc]
        try:
            add(rows, ids)
            return
        except (ValueError, TypeError) as exc:
            if len(parts) == 1:
                raise _batch_error(parts[0][0], exc) from None
        start = 0  # the block failed in its checks, before adding: one batch at a time
        for i, m, part_ids in parts:
            try:
                add(rows[start : start + m], part_ids)
            except (ValueError, TypeError) as exc:
                raise _batch_error(i, exc) from None
            start += m


def add_in_blocks(
    batches: Iterable[Any], dim: int, prepare: Prepare | None, add: AddPrepared
) -> int:
    """Add ``batches`` (``x`` or ``(x, ids)``) through ``add(prepared_x, ids)``, small ones
    gathered into blocks (see the module docstring); returns the rows added.

    ``prepare=None``: every batch goes to ``add(x, ids)`` as given, one call per batch (for
    indexes whose ``add`` does more than store vectors)."""
    if prepare is None:
        return _one_by_one(batches, add)
    block = _Block(dim, max(1, BLOCK_BYTES // (4 * dim)))
    total = 0
    for i, batch in enumerate(batches):
        x, ids = batch if isinstance(batch, tuple) else (batch, None)
        try:
            xp = prepare(x, "x")
            id_arr = None if ids is None else check_vector_ids("ids", ids, xp.shape[0])
        except (ValueError, TypeError) as exc:
            block.flush(add)
            raise _batch_error(i, exc) from None
        m = xp.shape[0]
        if not block.fits(m, id_arr is not None):
            block.flush(add)
        if m >= block.capacity:  # large: straight through, no copy
            try:
                add(xp, id_arr)
            except (ValueError, TypeError) as exc:
                raise _batch_error(i, exc) from None
        elif m:
            block.push(i, xp, id_arr)
        total += m
        del batch, x, xp, ids, id_arr  # this batch is not alive while the next one is read
    block.flush(add)
    return total


def _one_by_one(batches: Iterable[Any], add: AddPrepared) -> int:
    total = 0
    for i, batch in enumerate(batches):
        x, ids = batch if isinstance(batch, tuple) else (batch, None)
        try:
            add(x, ids)
        except (ValueError, TypeError) as exc:
            raise _batch_error(i, exc) from None
        total += int(np.shape(x)[0])
    return total
