"""Mixed-dimension embeddings (Ginart et al., 2021): smaller dims for larger fields."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from embedlab._validation import BudgetError, check_float_in_range, check_positive_float
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable
from embedlab.tables._registry import register_table

__all__ = ["MixedDimTable"]


def _dims(cards: Sequence[int], dim: int, alpha: float, scale: float) -> list[int]:
    """``d_f = clamp(round(scale * card_f ** -alpha), 1, dim)``, widened to ``dim`` where
    the projection would make the field no smaller than a full table."""
    out = []
    for c in cards:
        d = min(dim, max(1, round(scale * c ** (-alpha))))
        if d < dim and c * d + d * dim >= c * dim:
            d = dim
        out.append(d)
    return out


def _floats(cards: Sequence[int], dims: Sequence[int], dim: int) -> int:
    """Parameters of the tables and projections (none where ``d_f == dim``)."""
    return sum(c * d + (d * dim if d < dim else 0) for c, d in zip(cards, dims, strict=True))


@register_table("mde")
class MixedDimTable(EmbeddingTable):
    """Mixed-dimension embeddings with a per-field projection to ``dim``.

    Field ``f`` gets a table of ``card_f x d_f`` and, when ``d_f < dim``, a
    ``d_f x dim`` projection. The dims follow the paper's power law
    ``d_f = scale * p_f ** alpha`` with the per-id popularity ``p_f ~ 1 / card_f``
    (cardinality is all the table knows about frequency), i.e.
    ``d_f ~ card_f ** -alpha``, clamped to ``[1, dim]``. A field whose projected
    form would not be smaller than its full table keeps ``d_f = dim`` and no
    projection.

    Budget: the largest ``scale`` whose tables and projections fit
    (bisection; memory is monotone in ``scale``). :class:`BudgetError` when even
    ``d_f = 1`` for every field does not fit, which bounds the compression at
    about ``dim``.

    Ginart et al., "Mixed Dimension Embeddings with Application to Memory-Efficient
    Recommendation Systems", ISIT 2021.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: output embedding dimension.
        compression: use at most ``full_bytes / compression`` bytes.
        seed: seeds the initialisation.
        alpha: temperature of the power law in ``[0, 1]``; 0 gives every field the same dim.
        init_std: std of the output embedding at initialisation (projections are
            drawn with std ``1 / sqrt(d_f)`` so they preserve the scale).

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32; field ``f``'s
        table ``(card_f, d_f)``, projection ``(d_f, dim)``.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = MixedDimTable([Field("user", 957), Field("ctx", 7)], dim=16, compression=4)
        >>> table.dims
        [3, 16]
        >>> table(torch.tensor([[3, 6]])).shape
        torch.Size([1, 2, 16])
    """

    strict_ids = True

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        alpha: float = 0.3,
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        self.alpha = check_float_in_range("alpha", alpha, 0.0, 1.0)
        self.init_std = check_positive_float("init_std", init_std)
        cards = self.cardinalities
        budget = self.budget_bytes // FLOAT32_BYTES
        low_dims = _dims(cards, self.dim, self.alpha, 0.0)
        if _floats(cards, low_dims, self.dim) > budget:
            need = _floats(cards, low_dims, self.dim) * FLOAT32_BYTES
            raise BudgetError(
                f"mde cannot reach compression {self.compression:g} for these fields: "
                f"needs at least {need} bytes, budget is {self.budget_bytes}"
            )
        lo, hi = 0.0, float(self.dim) * max(cards) ** self.alpha + 1.0
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if _floats(cards, _dims(cards, self.dim, self.alpha, mid), self.dim) <= budget:
                lo = mid
            else:
                hi = mid
        self.scale = lo
        self.dims: list[int] = _dims(cards, self.dim, self.alpha, lo)

        gen = torch.Generator().manual_seed(self.seed)
        self.weights = nn.ParameterList()
        self.projections = nn.ParameterDict()
        for f, (c, d) in enumerate(zip(cards, self.dims, strict=True)):
            w = torch.empty(c, d).normal_(0.0, self.init_std, generator=gen)
            self.weights.append(nn.Parameter(w))
            if d < self.dim:
                p = torch.empty(d, self.dim).normal_(0.0, 1.0 / math.sqrt(d), generator=gen)
                self.projections[str(f)] = nn.Parameter(p)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        outs = []
        for f in range(self.n_fields):
            e = nn.functional.embedding(ids[:, f], self.weights[f])  # (batch, d_f)
            key = str(f)
            if key in self.projections:
                e = e @ self.projections[key]  # (batch, dim)
            outs.append(e)
        return torch.stack(outs, dim=1)

    def describe(self) -> dict[str, object]:
        return {"alpha": self.alpha, "dims": list(self.dims), "scale": self.scale}
