"""Logistic regression: the first-order read-out alone."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from embedlab.models._base import CTRModel
from embedlab.models._registry import register_model
from embedlab.tables import EmbeddingTable

__all__ = ["LR"]


@register_model("lr")
class LR(CTRModel):
    """Logistic regression: ``logit = bias + sum_j <w_j, e_j> (+ <v, dense>)``.

    The per-id scalar weight of textbook LR is replaced by a read-out of the
    id's embedding (see :class:`CTRModel`), so all id storage stays in the table.

    Args:
        table: any embedding table.
        n_dense: number of numeric features.
        seed: seeds the read-out weights.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field, FullTable
        >>> model = LR(FullTable([Field("user", 10), Field("item", 20)], dim=4))
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
        return self.first_order(emb, dense)
