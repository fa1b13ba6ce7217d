"""Factorization machine (Rendle, ICDM 2010)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from embedlab.models._base import CTRModel
from embedlab.models._registry import register_model
from embedlab.tables import EmbeddingTable

__all__ = ["FM", "fm_interaction"]


def fm_interaction(emb: torch.Tensor) -> torch.Tensor:
    """Sum of pairwise inner products ``sum_{i<j} <e_i, e_j>`` in O(n_fields * dim).

    Uses ``0.5 * sum_d ((sum_i e_id)^2 - sum_i e_id^2)``.

    Args:
        emb: ``(batch, n_fields, dim)``.

    Returns:
        ``(batch,)``.
    """
    square_of_sum = emb.sum(dim=1).square()  # (batch, dim)
    sum_of_square = emb.square().sum(dim=1)  # (batch, dim)
    return 0.5 * (square_of_sum - sum_of_square).sum(dim=1)


@register_model("fm")
class FM(CTRModel):
    """Factorization machine: first-order read-out + all pairwise field interactions.

    ``logit = bias + sum_j <w_j, e_j> + sum_{i<j} <e_i, e_j>``, after S. Rendle,
    "Factorization Machines", ICDM 2010; the pairwise term in its O(k n) form.

    Args:
        table: any embedding table.
        n_dense: number of numeric features (linear term only).
        seed: seeds the read-out weights.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field, FullTable
        >>> model = FM(FullTable([Field("user", 10), Field("item", 20)], dim=4))
        >>> model(torch.tensor([[1, 2], [3, 4]])).shape
        torch.Size([2])
    """

    def __init__(
        self,
        table: EmbeddingTable,
        *,
        n_dense: int = 0,
        seed: int = 0,
        history_field: int | None = None,
        history_side_fields: Sequence[int] = (),
    ) -> None:
        super().__init__(
            table,
            n_dense=n_dense,
            seed=seed,
            history_field=history_field,
            history_side_fields=history_side_fields,
        )
        with self._seeded_init():
            self._add_first_order()

    def forward_embeddings(self, emb: torch.Tensor, dense: torch.Tensor | None) -> torch.Tensor:
        return self.first_order(emb, dense) + fm_interaction(emb)
