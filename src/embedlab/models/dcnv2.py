"""DCN-V2 (Wang et al., WWW 2021): cross network and MLP over the same input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from embedlab._validation import (
    check_bool,
    check_choice,
    check_int,
    check_int_tuple,
    check_optional_int,
    check_probability,
)
from embedlab.models._base import CTRModel, make_mlp
from embedlab.models._registry import register_model
from embedlab.tables import EmbeddingTable

__all__ = ["CrossLayerV2", "DCNv2"]

Structure = Literal["parallel", "stacked"]


class CrossLayerV2(nn.Module):
    """One DCN-V2 cross layer: ``x_{l+1} = x0 * (W x_l + b) + x_l``.

    With ``low_rank=r`` the matrix is factorised, ``W = U V^T`` with ``U, V``
    of shape ``(width, r)`` (the paper's low-rank DCN-Mix without the mixture).

    Args:
        width: size of ``x0`` and ``x_l``.
        low_rank: rank ``r`` of ``W``, or None for a full ``(width, width)`` matrix.

    Shapes:
        ``forward(x0, x)``: both ``(batch, width)`` -> ``(batch, width)``.
    """

    def __init__(self, width: int, low_rank: int | None = None) -> None:
        super().__init__()
        self.width = width
        self.low_rank = low_rank
        self.proj: nn.Module
        if low_rank is None:
            self.proj = nn.Linear(width, width)
        else:
            # V^T x then U (.) + b
            self.proj = nn.Sequential(
                nn.Linear(width, low_rank, bias=False), nn.Linear(low_rank, width)
            )

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = x0 * self.proj(x) + x
        return out


@register_model("dcnv2")
class DCNv2(CTRModel):
    """DCN-V2: explicit bounded-degree crosses plus an MLP, combined by a linear output.

    After R. Wang et al., "DCN V2: Improved Deep & Cross Network and Practical
    Lessons for Web-scale Learning to Rank Systems", WWW 2021. The input
    ``x0 = [e_1, ..., e_F, dense]`` has width ``n_fields * dim + n_dense``.

    - ``structure="parallel"``: ``logit = w^T [cross(x0), MLP(x0)] + b``.
    - ``structure="stacked"``: ``logit = w^T MLP(cross(x0)) + b``.

    No first-order term: like the paper, the cross network already holds the
    degree-1 terms (``x_1 = x0 * (W x0 + b) + x0`` keeps ``x0``).

    Defaults: 3 cross layers, full rank, MLP (400, 400, 400) with dropout 0.2
    (BARS Frappe_x1 used 4 layers, rank 32, dropout 0.4, batch norm; test AUC 0.9838).

    Args:
        table: any embedding table.
        n_cross: number of cross layers (>= 0).
        low_rank: rank of each cross matrix, or None for full rank.
        hidden: MLP layer sizes (``()`` for the cross network alone).
        dropout: MLP dropout rate in [0, 1).
        batch_norm: batch norm in the MLP.
        structure: ``"parallel"`` or ``"stacked"``.
        n_dense: number of numeric features (part of ``x0``).
        seed: seeds the model's own parameters.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field, FullTable
        >>> table = FullTable([Field("user", 10), Field("item", 20)], dim=4)
        >>> model = DCNv2(table, n_cross=2, low_rank=4, hidden=(16,))
        >>> model(torch.tensor([[1, 2], [3, 4]])).shape
        torch.Size([2])
    """

    def __init__(
        self,
        table: EmbeddingTable,
        *,
        n_cross: int = 3,
        low_rank: int | None = None,
        hidden: Sequence[int] | str = (400, 400, 400),
        dropout: float = 0.2,
        batch_norm: bool = False,
        structure: Structure = "parallel",
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
        self.n_cross = check_int("n_cross", n_cross, min_value=0)
        self.low_rank = check_optional_int("low_rank", low_rank, min_value=1)
        self.hidden = check_int_tuple("hidden", hidden)
        self.dropout = check_probability("dropout", dropout)
        self.batch_norm = check_bool("batch_norm", batch_norm)
        self.structure = check_choice("structure", structure, ("parallel", "stacked"))
        width = self.flat_dim
        with self._seeded_init():
            self.cross = nn.ModuleList(
                CrossLayerV2(width, self.low_rank) for _ in range(self.n_cross)
            )
            self.mlp = make_mlp(
                width, self.hidden, dropout=self.dropout, batch_norm=self.batch_norm
            )
            mlp_width = self.hidden[-1] if self.hidden else width
            out_width = (
                width + mlp_width if self.structure == "parallel" and self.hidden else mlp_width
            )
            self.out = nn.Linear(out_width, 1)

    def cross_network(self, x0: torch.Tensor) -> torch.Tensor:
        """Apply the cross layers: ``(batch, width)`` -> ``(batch, width)``."""
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        return x

    def forward_embeddings(self, emb: torch.Tensor, dense: torch.Tensor | None) -> torch.Tensor:
        x0 = self._flat_input(emb, dense)  # (batch, n_fields * dim + n_dense)
        if self.structure == "stacked" or not self.hidden:
            h = self.mlp(self.cross_network(x0))
        else:
            h = torch.cat([self.cross_network(x0), self.mlp(x0)], dim=1)
        logits: torch.Tensor = self.out(h).squeeze(-1)
        return logits
