"""DeepFM (Guo et al., IJCAI 2017): FM and an MLP sharing one embedding table."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from embedlab._validation import check_bool, check_int_tuple, check_probability
from embedlab.models._base import CTRModel, make_mlp
from embedlab.models._registry import register_model
from embedlab.models.fm import fm_interaction
from embedlab.tables import EmbeddingTable

__all__ = ["DeepFM"]


@register_model("deepfm")
class DeepFM(CTRModel):
    """DeepFM: ``logit = first_order + FM(e) + MLP([e_1, ..., e_F, dense])``.

    After H. Guo et al., "DeepFM: A Factorization-Machine based Neural Network
    for CTR Prediction", IJCAI 2017. The FM and deep parts share the embeddings;
    the first-order term is the read-out described in :class:`CTRModel`.

    Defaults follow the BARS Frappe_x1 DeepFM configuration (FuxiCTR v1.1.0,
    reported test AUC 0.9839): hidden (400, 400, 400), ReLU, dropout 0.2. BARS
    used batch norm there; it is off by default here (``batch_norm=True`` to match).

    Args:
        table: any embedding table.
        hidden: MLP layer sizes, e.g. ``(400, 400, 400)`` or ``"400-400-400"``.
        dropout: dropout rate after each hidden layer, in [0, 1).
        batch_norm: batch norm after each hidden linear layer.
        n_dense: number of numeric features (linear term and MLP input).
        seed: seeds the model's own parameters.

    Shapes:
        MLP input ``(batch, n_fields * dim + n_dense)``.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field, FullTable
        >>> model = DeepFM(FullTable([Field("user", 10), Field("item", 20)], dim=4), hidden=(8,))
        >>> model(torch.tensor([[1, 2], [3, 4]])).shape
        torch.Size([2])
    """

    def __init__(
        self,
        table: EmbeddingTable,
        *,
        hidden: Sequence[int] | str = (400, 400, 400),
        dropout: float = 0.2,
        batch_norm: bool = False,
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
        self.hidden = check_int_tuple("hidden", hidden)
        self.dropout = check_probability("dropout", dropout)
        self.batch_norm = check_bool("batch_norm", batch_norm)
        with self._seeded_init():
            self._add_first_order()
            self.mlp = make_mlp(
                self.flat_dim, self.hidden, dropout=self.dropout, batch_norm=self.batch_norm
            )
            self.mlp_out = nn.Linear(self.hidden[-1] if self.hidden else self.flat_dim, 1)

    def forward_embeddings(self, emb: torch.Tensor, dense: torch.Tensor | None) -> torch.Tensor:
        deep: torch.Tensor = self.mlp_out(self.mlp(self._flat_input(emb, dense))).squeeze(-1)
        return self.first_order(emb, dense) + fm_interaction(emb) + deep
