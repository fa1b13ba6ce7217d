"""AutoInt and AutoInt+ (Song et al., CIKM 2019): self-attention over field embeddings.

``mohd=r`` makes every interacting layer a Mixture-of-Hidden-Dimensions layer (Chen et al.,
ICML 2025, see :mod:`embedlab.models._mohd`): per token only a share ``r`` of its hidden
dimensions (shared + routed groups, rescaled) flows on to the next layer and the output.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from embedlab._validation import check_bool, check_int, check_int_tuple, check_probability
from embedlab.models._base import CTRModel, make_mlp
from embedlab.models._mohd import MoHD, check_mohd
from embedlab.models._registry import register_model
from embedlab.tables import EmbeddingTable

__all__ = ["AutoInt", "AutoIntPlus", "InteractingLayer"]


class InteractingLayer(nn.Module):
    """One interacting layer: multi-head self-attention across fields with a residual.

    For each head ``h``: ``alpha_{m,k} = softmax_k <W_q e_m, W_k e_k>`` and
    ``e~_m = sum_k alpha_{m,k} W_v e_k``; the heads are concatenated and
    ``out_m = ReLU(e~_m + W_res e_m)`` (eq. 5-8 of the paper).

    Args:
        in_dim: width of each input token.
        n_heads: number of attention heads.
        head_dim: width ``d'`` of each head; the output width is ``n_heads * head_dim``.
        use_residual: add ``W_res e_m`` before the ReLU.
        use_scale: divide the scores by ``sqrt(head_dim)`` (not in the paper).
        mohd: keep only this share of the output's hidden dimensions per token (a
            :class:`~embedlab.models._mohd.MoHD` after the ReLU); ``None`` = dense.
        mohd_groups: groups of hidden dimensions MoHD routes.

    Shapes:
        ``forward(x)``: ``(batch, n_tokens, in_dim)`` -> ``(batch, n_tokens, n_heads * head_dim)``;
        ``attention(x)``: -> ``(batch, n_heads, n_tokens, n_tokens)``, rows sum to 1.
    """

    def __init__(
        self,
        in_dim: int,
        n_heads: int,
        head_dim: int,
        *,
        use_residual: bool = True,
        use_scale: bool = False,
        mohd: float | None = None,
        mohd_groups: int = 8,
    ) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = head_dim
        self.use_scale = use_scale
        out_dim = n_heads * head_dim
        self.query = nn.Linear(in_dim, out_dim, bias=False)
        self.key = nn.Linear(in_dim, out_dim, bias=False)
        self.value = nn.Linear(in_dim, out_dim, bias=False)
        self.residual = nn.Linear(in_dim, out_dim, bias=False) if use_residual else None
        self.mohd = None if mohd is None else MoHD(out_dim, mohd, n_groups=mohd_groups)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # (batch, tokens, heads * head_dim) -> (batch, heads, tokens, head_dim)
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention weights ``(batch, n_heads, n_tokens, n_tokens)``."""
        q, k = self._heads(self.query(x)), self._heads(self.key(x))
        scores = q @ k.transpose(-1, -2)  # (batch, heads, tokens, tokens)
        if self.use_scale:
            scores = scores * self.head_dim**-0.5
        return scores.softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        mixed = self.attention(x) @ self._heads(self.value(x))  # (batch, heads, tokens, head_dim)
        out = mixed.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)
        if self.residual is not None:
            out = out + self.residual(x)
        out = torch.relu(out)
        return out if self.mohd is None else self.mohd(out)


@register_model("autoint")
class AutoInt(CTRModel):
    """AutoInt: stacked interacting layers over the field embeddings, then a linear output.

    After W. Song et al., "AutoInt: Automatic Feature Interaction Learning via
    Self-Attentive Neural Networks", CIKM 2019. Defaults are the paper's: 3
    layers, 2 heads, ``d' = 32`` per head, residual connections, unscaled dot
    products. ``logit = w^T [out_1, ..., out_T] + b`` over all tokens.

    Numeric features follow the paper too: feature ``j`` becomes a token
    ``x_j * v_j`` with a learned vector ``v_j`` of size ``dim``
    (``dense_embedding``, shape ``(n_dense, dim)``), so it takes part in attention.

    Args:
        table: any embedding table.
        n_layers: number of interacting layers (>= 1).
        n_heads: heads per layer.
        head_dim: width of each head.
        use_residual: residual connections in each layer.
        use_scale: scale scores by ``1/sqrt(head_dim)``.
        mohd: share of hidden dimensions active per token in every interacting layer, in
            ``(0, 1]`` (MoHD: shared + routed sub-dimensions with activation scaling);
            ``None`` (default) = dense. ``1`` keeps all of them (the dense layer).
        mohd_groups: groups of hidden dimensions MoHD splits each layer's width into.
        n_dense: number of numeric features.
        seed: seeds the model's own parameters.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field, FullTable
        >>> model = AutoInt(FullTable([Field("user", 10), Field("item", 20)], dim=4), head_dim=8)
        >>> model(torch.tensor([[1, 2], [3, 4]])).shape
        torch.Size([2])
    """

    def __init__(
        self,
        table: EmbeddingTable,
        *,
        n_layers: int = 3,
        n_heads: int = 2,
        head_dim: int = 32,
        use_residual: bool = True,
        use_scale: bool = False,
        mohd: float | None = None,
        mohd_groups: int = 8,
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
        self.n_layers = check_int("n_layers", n_layers, min_value=1)
        self.n_heads = check_int("n_heads", n_heads, min_value=1)
        self.head_dim = check_int("head_dim", head_dim, min_value=1)
        self.use_residual = check_bool("use_residual", use_residual)
        self.use_scale = check_bool("use_scale", use_scale)
        self.mohd = check_mohd(mohd)
        self.mohd_groups = check_int("mohd_groups", mohd_groups, min_value=1)
        self.n_tokens = self.n_fields + self.n_dense
        with self._seeded_init():
            self.dense_embedding = (
                nn.Parameter(torch.randn(self.n_dense, self.dim) * self.dim**-0.5)
                if self.n_dense
                else None
            )
            width = self.n_heads * self.head_dim
            self.layers = nn.ModuleList(
                InteractingLayer(
                    self.dim if i == 0 else width,
                    self.n_heads,
                    self.head_dim,
                    use_residual=self.use_residual,
                    use_scale=self.use_scale,
                    mohd=self.mohd,
                    mohd_groups=self.mohd_groups,
                )
                for i in range(self.n_layers)
            )
            self.out = nn.Linear(self.n_tokens * width, 1)

    def tokens(self, emb: torch.Tensor, dense: torch.Tensor | None) -> torch.Tensor:
        """Field embeddings and scaled dense vectors: ``(batch, n_fields + n_dense, dim)``."""
        if self.dense_embedding is None or dense is None:
            return emb
        return torch.cat([emb, dense.unsqueeze(-1) * self.dense_embedding], dim=1)

    def interact(self, emb: torch.Tensor, dense: torch.Tensor | None) -> torch.Tensor:
        """Run the interacting layers: -> ``(batch, n_tokens, n_heads * head_dim)``."""
        x = self.tokens(emb, dense)
        for layer in self.layers:
            x = layer(x)
        return x

    def forward_embeddings(self, emb: torch.Tensor, dense: torch.Tensor | None) -> torch.Tensor:
        logits: torch.Tensor = self.out(self.interact(emb, dense).flatten(start_dim=1)).squeeze(-1)
        return logits


@register_model("autoint_plus")
class AutoIntPlus(AutoInt):
    """AutoInt+: AutoInt plus a parallel MLP on the flattened embeddings; logits add.

    Same paper (Section 5.5, "AutoInt+"). MLP defaults: (400, 400, 400), ReLU,
    dropout 0.2, as for :class:`~embedlab.models.DeepFM`.

    Args:
        table: any embedding table.
        hidden: MLP layer sizes, e.g. ``"400-400-400"``.
        dropout: MLP dropout rate in [0, 1).
        batch_norm: batch norm in the MLP.
        n_layers, n_heads, head_dim, use_residual, use_scale, mohd, mohd_groups, n_dense,
            seed: as :class:`AutoInt`.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field, FullTable
        >>> table = FullTable([Field("user", 10), Field("item", 20)], dim=4)
        >>> model = AutoIntPlus(table, head_dim=8, hidden=(16,))
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
        n_layers: int = 3,
        n_heads: int = 2,
        head_dim: int = 32,
        use_residual: bool = True,
        use_scale: bool = False,
        mohd: float | None = None,
        mohd_groups: int = 8,
        n_dense: int = 0,
        seed: int = 0,
        history_field: int | None = None,
        history_side_fields: Sequence[int] = (),
    ) -> None:
        super().__init__(
            table,
            history_field=history_field,
            history_side_fields=history_side_fields,
            n_layers=n_layers,
            n_heads=n_heads,
            head_dim=head_dim,
            use_residual=use_residual,
            use_scale=use_scale,
            mohd=mohd,
            mohd_groups=mohd_groups,
            n_dense=n_dense,
            seed=seed,
        )
        self.hidden = check_int_tuple("hidden", hidden)
        self.dropout = check_probability("dropout", dropout)
        self.batch_norm = check_bool("batch_norm", batch_norm)
        with self._seeded_init(stream=1):  # the MLP's own stream, distinct from AutoInt's
            self.mlp = make_mlp(
                self.flat_dim, self.hidden, dropout=self.dropout, batch_norm=self.batch_norm
            )
            self.mlp_out = nn.Linear(self.hidden[-1] if self.hidden else self.flat_dim, 1)

    def forward_embeddings(self, emb: torch.Tensor, dense: torch.Tensor | None) -> torch.Tensor:
        deep: torch.Tensor = self.mlp_out(self.mlp(self._flat_input(emb, dense))).squeeze(-1)
        return super().forward_embeddings(emb, dense) + deep
