"""Storage arithmetic and masks shared by the pruning tables (``pep``, ``deeplight``, ``optembed``).

A pruned table is deployed sparsely. Its bytes are counted for the cheapest of
three layouts of the ``(n_rows, dim)`` value matrix with ``nnz`` non-zeros:

- ``dense``: every value, ``n_rows * dim * 4``;
- ``bitmask``: a ``ceil(dim / 8)``-byte presence mask per row, a rank directory
  (one int32 running count per 512 mask bits, so that a row's first value is found
  with a few popcounts) and the non-zero values, ``4 * nnz``;
- ``coo``: a sorted int32 flat position (``row * dim + col``, binary-searched) and a
  float32 value per non-zero, ``8 * nnz``.

A table that drops whole rows (``optembed``) maps each kept id to its row with the
cheaper of a sorted int32 key list (``4`` bytes per kept id, binary-searched) or a
presence bitmap of ``ceil(n_ids / 8)`` bytes plus its rank directory; a field that
keeps every id needs no map.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from embedlab._validation import BudgetError, check_positive_float
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable

__all__ = [
    "INDEX_BYTES",
    "RANK_BLOCK_BITS",
    "MaskedTable",
    "budget_floor_error",
    "field_offsets",
    "id_map_bytes",
    "magnitude_mask",
    "max_nonzeros",
    "normal_table",
    "pruned_rows_bytes",
    "rank_directory_bytes",
    "sparse_formats",
    "sparse_table_bytes",
]

#: a position or key stored as int32
INDEX_BYTES = 4
#: bits covered by one int32 entry of a rank directory
RANK_BLOCK_BITS = 512


def rank_directory_bytes(n_bits: int) -> int:
    """Bytes of the running popcounts over a bitmap of ``n_bits``: one int32 per 512 bits."""
    return INDEX_BYTES * -(-n_bits // RANK_BLOCK_BITS)


def _bitmask_overhead(n_rows: int, dim: int) -> int:
    """Bytes of the per-row presence masks plus their rank directory (values excluded)."""
    mask_bytes = n_rows * -(-dim // 8)
    return mask_bytes + rank_directory_bytes(8 * mask_bytes)


def sparse_formats(nnz: int, n_rows: int, dim: int) -> dict[str, int]:
    """Bytes of each layout of an ``(n_rows, dim)`` float32 matrix holding ``nnz`` non-zeros.

    Example:
        >>> sparse_formats(10, n_rows=100, dim=16)
        {'dense': 6400, 'bitmask': 256, 'coo': 80}
    """
    return {
        "dense": n_rows * dim * FLOAT32_BYTES,
        "bitmask": _bitmask_overhead(n_rows, dim) + FLOAT32_BYTES * nnz,
        "coo": (INDEX_BYTES + FLOAT32_BYTES) * nnz,
    }


def sparse_table_bytes(nnz: int, n_rows: int, dim: int) -> int:
    """Bytes of the cheapest layout (see :func:`sparse_formats`)."""
    return min(sparse_formats(nnz, n_rows, dim).values())


def max_nonzeros(budget_bytes: int, n_rows: int, dim: int) -> int:
    """The most non-zeros an ``(n_rows, dim)`` matrix may keep within ``budget_bytes``.

    The inverse of :func:`sparse_table_bytes`: ``n_rows * dim`` when the dense layout
    fits, else the larger of what the bitmask and COO layouts afford.

    Example:
        >>> max_nonzeros(6400, n_rows=100, dim=16), max_nonzeros(640, n_rows=100, dim=16)
        (1600, 106)
    """
    total = n_rows * dim
    if total * FLOAT32_BYTES <= budget_bytes:
        return total
    bitmask = (budget_bytes - _bitmask_overhead(n_rows, dim)) // FLOAT32_BYTES
    coo = budget_bytes // (INDEX_BYTES + FLOAT32_BYTES)
    return max(0, min(total, max(bitmask, coo)))


def id_map_bytes(n_kept: int, n_ids: int) -> int:
    """Bytes of the id -> kept-row map of one field: none when every id is kept, else the
    cheaper of a sorted int32 key list and a presence bitmap with its rank directory.

    Example:
        >>> id_map_bytes(10, 1000), id_map_bytes(500, 1000), id_map_bytes(1000, 1000)
        (40, 133, 0)
    """
    if n_kept >= n_ids:
        return 0
    bitmap = -(-n_ids // 8) + rank_directory_bytes(n_ids)
    return min(INDEX_BYTES * n_kept, bitmap)


def pruned_rows_bytes(
    kept_per_field: Sequence[int], dims: Sequence[int], cardinalities: Sequence[int]
) -> int:
    """Bytes of a row-pruned table: field ``f`` keeps ``kept_per_field[f]`` float32 rows
    of ``dims[f]`` values plus its id map (:func:`id_map_bytes`).

    Example:
        >>> pruned_rows_bytes([10, 7], dims=[4, 2], cardinalities=[1000, 7])
        256
    """
    values = sum(k * d for k, d in zip(kept_per_field, dims, strict=True)) * FLOAT32_BYTES
    maps = sum(id_map_bytes(k, c) for k, c in zip(kept_per_field, cardinalities, strict=True))
    return values + maps


def magnitude_mask(values: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of ``values``'s shape keeping its ``k`` largest non-zero magnitudes.

    Ties at the cut are broken by ``torch.topk`` (deterministic on a given device).
    """
    flat = values.detach().abs().flatten()
    keep = torch.zeros_like(flat, dtype=torch.bool)
    k = min(max(k, 0), flat.numel())
    if k:
        keep[torch.topk(flat, k, sorted=False).indices] = True
    return (keep & (flat > 0)).view(values.shape)


def field_offsets(cardinalities: Sequence[int]) -> torch.Tensor:
    """First global row of each field in the concatenated table ``(n_fields,)`` int64."""
    cards = torch.tensor(list(cardinalities), dtype=torch.int64)
    return torch.cumsum(cards, 0) - cards


def normal_table(n_rows: int, dim: int, std: float, seed: int) -> torch.Tensor:
    """The seeded ``N(0, std^2)`` initial table ``(n_rows, dim)``, the same for the same seed."""
    gen = torch.Generator().manual_seed(seed)
    return torch.empty(n_rows, dim).normal_(0.0, std, generator=gen)


def budget_floor_error(method: str, table: EmbeddingTable, need: int, what: str) -> BudgetError:
    """The :class:`BudgetError` of a pruning table whose budget is below its minimum ``need``."""
    return BudgetError(
        f"{method} cannot reach compression {table.compression:g} for these fields: "
        f"needs at least {need} bytes, budget is {table.budget_bytes} ({what}, i.e. "
        f"compression at most {table.full_bytes / need:.4g})"
    )


class MaskedTable(EmbeddingTable):
    """A full float32 table whose entries are pruned by a persistent element mask.

    The shared core of :class:`~embedlab.tables.pep.PEPTable` and
    :class:`~embedlab.tables.deeplight.DeepLightTable`: one concatenated table
    ``weight (sum(cardinalities), dim)``, a bool ``mask`` of the same shape saved with
    the state dict (so a best-epoch restore restores the structure too), the budget
    turned into :attr:`max_nnz` non-zeros, and :meth:`memory_bytes` as the cheapest
    sparse layout of the non-zeros of :meth:`effective_weight` (see
    :func:`sparse_formats`).

    Budget: ``max_nnz = max_nonzeros(budget_bytes, n_rows, dim)``; a budget that cannot
    keep ``dim`` non-zeros per field (one row's worth) raises :class:`BudgetError`.
    """

    export_format = "masked"
    offsets: torch.Tensor
    mask: torch.Tensor

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        self.init_std = check_positive_float("init_std", init_std)
        n_rows = sum(self.cardinalities)
        floor_nnz = self.n_fields * self.dim
        need = sparse_table_bytes(floor_nnz, n_rows, self.dim)
        if need > self.budget_bytes:
            raise budget_floor_error(
                self.name, self, need, f"it keeps at least dim={self.dim} non-zeros per field"
            )
        self.max_nnz = max_nonzeros(self.budget_bytes, n_rows, self.dim)
        self.register_buffer("offsets", field_offsets(self.cardinalities), persistent=False)
        self.register_buffer("mask", torch.ones(n_rows, self.dim, dtype=torch.bool))
        self.weight = nn.Parameter(normal_table(n_rows, self.dim, self.init_std, self.seed))

    @property
    def n_entries(self) -> int:
        return int(self.weight.numel())

    def effective_weight(self) -> torch.Tensor:
        """The table as the model reads it ``(n_rows, dim)``; zeros are not stored."""
        return self.weight * self.mask

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        rows = ids + self.offsets  # (batch, n_fields) global rows
        return self._masked(nn.functional.embedding(rows, self.weight), rows)

    def _masked(self, values: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``values`` looked up at ``rows`` where the mask keeps them, exactly +0 elsewhere."""
        return torch.where(self.mask[rows], values, torch.zeros_like(values))

    def nonzeros(self) -> int:
        with torch.no_grad():
            return int(torch.count_nonzero(self.effective_weight()))

    def memory_bytes(self) -> int:
        """The cheapest sparse layout of the current non-zeros (:func:`sparse_table_bytes`)."""
        return sparse_table_bytes(self.nonzeros(), *self.weight.shape)

    @torch.no_grad()
    def prune_to(self, k: int, values: torch.Tensor | None = None) -> None:
        """Keep the ``k`` largest-magnitude non-zeros of ``values`` (default: the masked
        weights) in :attr:`mask` and zero the rest of ``weight``."""
        values = self.effective_weight() if values is None else values
        self.mask.copy_(magnitude_mask(values, k))
        self.weight.mul_(self.mask)

    def on_step(self, step: int) -> None:
        with torch.no_grad():
            self.weight.mul_(self.mask)  # pruned entries stay exactly zero

    def sparsity_report(self) -> dict[str, object]:
        """Non-zeros, sparsity and the layout :meth:`memory_bytes` counts."""
        nnz = self.nonzeros()
        formats = sparse_formats(nnz, *self.weight.shape)
        return {
            "max_nnz": self.max_nnz,
            "nnz": nnz,
            "sparsity": 1.0 - nnz / self.n_entries,
            "format": min(formats, key=formats.__getitem__),
        }
