"""Inference modules of exported tables whose deployable form is not their training state.

Each reads its method's deployable tensors as they are stored (codes, packed bits,
sparse values, pointers) and computes, with the same float operations, what the trained
table computes in eval mode. Every forward takes validated int64 ids ``(batch, n_fields)``
and returns ``(batch, n_fields, dim)`` float32, with no data-dependent control flow.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from embedlab.tables._bits import bit_rank, gather_bits, unpack_bits
from embedlab.tables._budget import hashed_local_rows

__all__ = [
    "IdMap",
    "PackedRows",
    "PointerRows",
    "PooledRows",
    "ProductCodes",
    "QuantizedRows",
    "SparseMatrix",
    "offsets_of",
    "project",
]


#: bits per entry of the rank directories rebuilt at load
_FINE_BITS = 64


def offsets_of(sizes: Sequence[int]) -> torch.Tensor:
    """``(n,)`` int64 start of each block of ``sizes`` in their concatenation."""
    t = torch.tensor(list(sizes), dtype=torch.int64)
    return torch.cumsum(t, 0) - t


def project(e: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``e @ p`` as a fixed sequence of elementwise products and sums.

    ``e`` ``(..., d)``, ``p`` ``(..., d, dim)`` broadcastable -> ``(..., dim)``. Every output
    entry is ``((e_0 p_0 + e_1 p_1) + e_2 p_2) + ...`` whatever the batch shape, so a table
    folded once (``project(W, P)``) and the same rows projected per batch agree bit for bit;
    a matmul's accumulation order may depend on the matrix sizes.
    """
    out = e[..., 0:1] * p[..., 0, :]
    for j in range(1, e.shape[-1]):
        out = out + e[..., j : j + 1] * p[..., j, :]
    return out


class QuantizedRows(nn.Module):
    """``int8`` / ``int16``: ``codes[row] * scale[row]``, rows hashed as in training."""

    codes: torch.Tensor
    scales: torch.Tensor
    offsets: torch.Tensor
    field_rows: torch.Tensor
    field_cards: torch.Tensor
    hashed: torch.Tensor
    hash_coef: torch.Tensor | None

    def __init__(
        self,
        codes: torch.Tensor,
        scales: torch.Tensor,
        rows: Sequence[int],
        cardinalities: Sequence[int],
        hash_coef: torch.Tensor | None,
    ) -> None:
        super().__init__()
        self.register_buffer("codes", codes)
        self.register_buffer("scales", scales)
        self.register_buffer("offsets", offsets_of(rows))
        self.register_buffer("field_rows", torch.tensor(list(rows), dtype=torch.int64))
        self.register_buffer("field_cards", torch.tensor(list(cardinalities), dtype=torch.int64))
        self.register_buffer("hashed", self.field_rows < self.field_cards)
        self.register_buffer("hash_coef", hash_coef)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        local = ids
        if self.hash_coef is not None:
            local = hashed_local_rows(
                ids, self.hash_coef, self.field_rows, self.hashed, self.field_cards
            )
        rows = local + self.offsets
        return self.codes[rows].to(torch.float32) * self.scales[rows].unsqueeze(-1)


class PackedRows(nn.Module):
    """``alpt``: row codes bit-packed at ``bits``, ``(code + offset) * step[row]``."""

    packed: torch.Tensor
    steps: torch.Tensor
    offsets: torch.Tensor

    def __init__(
        self,
        packed: torch.Tensor,
        steps: torch.Tensor,
        cardinalities: Sequence[int],
        *,
        bits: int,
        dim: int,
    ) -> None:
        super().__init__()
        self.bits, self.dim = bits, dim
        self.qmin = -(1 << (bits - 1))
        self.offset = 0.5 if bits == 1 else 0.0
        self.register_buffer("packed", packed)
        self.register_buffer("steps", steps)
        self.register_buffer("offsets", offsets_of(cardinalities))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = ids + self.offsets
        codes = unpack_bits(self.packed[rows], self.bits, self.dim) + self.qmin
        return (codes.to(torch.float32) + self.offset) * self.steps[rows].unsqueeze(-1)


class PointerRows(nn.Module):
    """``dedup``: ``rows[pointer[id]]`` with the pointers read from their packed bits."""

    rows: torch.Tensor
    pointers: torch.Tensor
    offsets: torch.Tensor

    def __init__(
        self, rows: torch.Tensor, pointers: torch.Tensor, cardinalities: Sequence[int], bits: int
    ) -> None:
        super().__init__()
        self.bits = bits
        self.register_buffer("rows", rows)
        self.register_buffer("pointers", pointers)
        self.register_buffer("offsets", offsets_of(cardinalities))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ptr = gather_bits(self.pointers, ids + self.offsets, self.bits)
        return nn.functional.embedding(ptr, self.rows)


class PooledRows(nn.Module):
    """``adaemb``: the row of a global id found by binary search in the sorted keys; zeros
    for ids without a row."""

    keys: torch.Tensor
    rows: torch.Tensor
    offsets: torch.Tensor

    def __init__(
        self, keys: torch.Tensor, rows: torch.Tensor, cardinalities: Sequence[int]
    ) -> None:
        super().__init__()
        self.register_buffer("keys", keys)
        self.register_buffer("rows", rows)
        self.register_buffer("offsets", offsets_of(cardinalities))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        gids = (ids + self.offsets).to(self.keys.dtype)
        pos = torch.searchsorted(self.keys, gids).clamp(max=self.keys.shape[0] - 1)
        present = (self.keys[pos] == gids).unsqueeze(-1)
        rows = nn.functional.embedding(pos, self.rows)
        return torch.where(present, rows, torch.zeros_like(rows))


class IdMap(nn.Module):
    """Id -> stored row of one id set: every id (``kind="none"``), a sorted key list
    (``"keys"``, binary search) or a presence bitmap with its rank directory (``"bitmap"``).

    The file's directory counts per 512 bits; a finer one (per 64 bits, 6% of the bitmap)
    is rebuilt at load so a lookup pops 8 bytes instead of 64."""

    keys: torch.Tensor
    bitmap: torch.Tensor
    rank: torch.Tensor

    def __init__(self, kind: str, keys: torch.Tensor, bitmap: torch.Tensor) -> None:
        super().__init__()
        self.kind = kind
        self.register_buffer("keys", keys)
        self.register_buffer("bitmap", bitmap)
        bits = unpack_bits(bitmap, 1, 8 * bitmap.shape[0])
        self.register_buffer("rank", (torch.cumsum(bits, 0) - bits)[::_FINE_BITS].to(torch.int32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(present, row)`` of ids ``x`` (any shape); ``row`` is clamped where absent."""
        if self.kind == "keys":
            k = x.to(self.keys.dtype)
            pos = torch.searchsorted(self.keys, k).clamp(max=max(self.keys.shape[0] - 1, 0))
            return self.keys[pos] == k, pos
        if self.kind == "bitmap":
            return bit_rank(self.bitmap, self.rank, x, block_bits=_FINE_BITS)
        return torch.ones_like(x, dtype=torch.bool), x


class SparseMatrix(nn.Module):
    """``pep`` / ``deeplight``: the non-zeros of the ``(n_rows, dim)`` table in one of three
    layouts (see :mod:`embedlab.tables._sparse`): ``dense`` values; ``bitmask`` (per-row
    presence bytes, rank directory, values); ``coo`` (sorted flat int32 positions, values)."""

    values: torch.Tensor
    mask: torch.Tensor
    offsets: torch.Tensor
    cols: torch.Tensor

    def __init__(
        self,
        layout: str,
        values: torch.Tensor,
        index: IdMap,
        cardinalities: Sequence[int],
        dim: int,
        mask: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.layout, self.dim = layout, dim
        self.row_bits = 8 * -(-dim // 8)
        self.register_buffer("values", values)
        self.register_buffer("mask", torch.zeros(0, 1, dtype=torch.uint8) if mask is None else mask)
        self.index = index
        self.register_buffer("offsets", offsets_of(cardinalities))
        self.register_buffer("cols", torch.arange(dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = ids + self.offsets  # (batch, n_fields)
        if self.layout == "dense":
            return nn.functional.embedding(rows, self.values.view(-1, self.dim))
        if self.values.shape[0] == 0:
            return torch.zeros(*ids.shape, self.dim, dtype=torch.float32, device=ids.device)
        if self.layout == "bitmask":  # rank of the row's first bit, then ranks inside the row
            _, start = self.index(rows * self.row_bits)
            bits = unpack_bits(self.mask[rows], 1, self.row_bits)[..., : self.dim]
            present, at = bits.bool(), start.unsqueeze(-1) + torch.cumsum(bits, -1) - bits
        else:
            present, at = self.index(rows.unsqueeze(-1) * self.dim + self.cols)
        found = self.values[at.clamp(max=self.values.shape[0] - 1)]
        return torch.where(present, found, torch.zeros_like(found))


class ProductCodes(nn.Module):
    """``dpq`` / ``mgqe``: ``D`` codes per id read from the packed codes of its tier, then the
    concatenated value centroids. Two tiers at most (a 1-bit tier map)."""

    values: torch.Tensor
    codes0: torch.Tensor
    codes1: torch.Tensor
    offsets: torch.Tensor
    group_cols: torch.Tensor

    def __init__(
        self,
        values: torch.Tensor,
        codes: Sequence[torch.Tensor],
        bits: Sequence[int],
        tiers: IdMap | None,
        cardinalities: Sequence[int],
    ) -> None:
        super().__init__()
        groups, k, sub = values.shape
        self.groups, self.centroids, self.sub = groups, k, sub
        self.bits = list(bits)
        self.register_buffer("values", values.reshape(groups * k, sub))
        self.register_buffer("codes0", codes[0])
        self.register_buffer(
            "codes1", codes[1] if len(codes) > 1 else torch.zeros(0, dtype=torch.uint8)
        )
        self.tiers = tiers  # bit 1: the tail tier; rank = the id's place in the tail
        self.register_buffer("offsets", offsets_of(cardinalities))
        self.register_buffer("group_cols", torch.arange(groups))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        gids = ids + self.offsets  # (batch, n_fields)
        if self.tiers is None:
            codes = gather_bits(
                self.codes0, gids.unsqueeze(-1) * self.groups + self.group_cols, self.bits[0]
            )
        else:
            tail, before = self.tiers(gids)
            head_codes = gather_bits(
                self.codes0,
                (gids - before).unsqueeze(-1) * self.groups + self.group_cols,
                self.bits[0],
            )
            tail_codes = gather_bits(
                self.codes1, before.unsqueeze(-1) * self.groups + self.group_cols, self.bits[1]
            )
            codes = torch.where(tail.unsqueeze(-1), tail_codes, head_codes)
        out = nn.functional.embedding(codes + self.group_cols * self.centroids, self.values)
        return out.reshape(*ids.shape, self.groups * self.sub)
