"""The hashing trick: each field hashed into its own block of rows."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from embedlab._validation import check_positive_float
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable
from embedlab.tables._budget import HASH_COEF_BYTES, hashed_local_rows, plan_rows
from embedlab.tables._hashing import hash_coefficients
from embedlab.tables._registry import register_table

__all__ = ["HashTable"]


@register_table("hash")
class HashTable(EmbeddingTable):
    """Per-field hashing trick under a memory budget.

    The budget buys ``(budget_bytes - hash coefficients) // (dim * 4)`` float32 rows.
    Fields whose cardinality is at most their fair share of rows keep one row per
    id; the other fields share the remaining rows in proportion to their
    cardinality and are hashed into them with a per-field universal hash
    ``h_f(id) = ((a_f id + b_f) mod p) mod rows_f``. Any non-negative id is
    accepted (``strict_ids = False``): ids beyond the cardinality of an unhashed
    field are hashed into its rows as well.

    Weinberger et al., "Feature Hashing for Large Scale Multitask Learning",
    ICML 2009; the per-field variant follows the "hash" baseline of the VLDB 2024
    embedding-compression benchmark.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: embedding dimension.
        compression: use at most ``full_bytes / compression`` bytes.
        seed: seeds the hash functions and the initialisation.
        init_std: std of the normal initialisation (as :class:`FullTable`).

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = HashTable([Field("user", 957), Field("item", 4082)], dim=16, compression=10)
        >>> table(torch.tensor([[3, 4000]])).shape
        torch.Size([1, 2, 16])
        >>> table.memory_bytes() <= table.budget_bytes
        True
    """

    strict_ids = False
    offsets: torch.Tensor
    field_rows: torch.Tensor
    field_cards: torch.Tensor
    hashed: torch.Tensor
    hash_coef: torch.Tensor

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
        cards = self.cardinalities
        rows = plan_rows(
            "hash",
            cards,
            self.budget_bytes,
            self.dim * FLOAT32_BYTES,
            overhead_bytes=HASH_COEF_BYTES * self.n_fields,
            compression=self.compression,
        )
        self.rows: list[int] = rows
        rows_t = torch.tensor(rows, dtype=torch.int64)
        offsets = torch.cumsum(rows_t, 0) - rows_t
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("field_rows", rows_t, persistent=False)
        self.register_buffer("field_cards", torch.tensor(cards), persistent=False)
        hashed = torch.tensor([r < c for r, c in zip(rows, cards, strict=True)])
        self.register_buffer("hashed", hashed, persistent=False)
        # Needed at inference to map ids to rows: persistent, counted in memory.
        self.register_buffer("hash_coef", hash_coefficients(self.n_fields, self.seed))
        self.weight = nn.Parameter(torch.empty(sum(rows), self.dim))
        gen = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            self.weight.normal_(0.0, self.init_std, generator=gen)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        local = hashed_local_rows(
            ids, self.hash_coef, self.field_rows, self.hashed, self.field_cards
        )  # (batch, n_fields)
        return nn.functional.embedding(local + self.offsets, self.weight)

    def describe(self) -> dict[str, object]:
        return {
            "buckets": list(self.rows),
            "total_rows": sum(self.rows),
            "hashed_fields": [
                f.name for f, r in zip(self.fields, self.rows, strict=True) if r < f.cardinality
            ],
        }
