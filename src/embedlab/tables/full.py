"""The uncompressed float32 table: the reference every method is measured against."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from embedlab._validation import BudgetError
from embedlab.fields import Field
from embedlab.tables._base import EmbeddingTable
from embedlab.tables._registry import register_table

__all__ = ["FullTable"]


@register_table("full")
class FullTable(EmbeddingTable):
    """One float32 row per id of every field (``nn.Embedding`` over concatenated ids).

    Only ``compression=1`` is possible. Ids outside ``[0, cardinality)`` raise.

    Example:
        >>> import torch
        >>> table = FullTable([Field("user", 10), Field("item", 20)], dim=4)
        >>> table(torch.tensor([[1, 2], [9, 19]])).shape
        torch.Size([2, 2, 4])
    """

    offsets: torch.Tensor

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
        if self.compression != 1.0:
            raise BudgetError(f"compression must be 1 for the full table, got {self.compression:g}")
        self.init_std = init_std
        offsets = torch.tensor([0, *self.cardinalities[:-1]], dtype=torch.int64).cumsum(0)
        self.register_buffer("offsets", offsets, persistent=False)
        self.weight = nn.Parameter(torch.empty(sum(self.cardinalities), self.dim))
        gen = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            self.weight.normal_(0.0, init_std, generator=gen)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        # ids: (batch, n_fields) local -> global rows of the concatenated table
        return nn.functional.embedding(ids + self.offsets, self.weight)
