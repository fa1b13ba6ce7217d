"""Matryoshka wrapper: a base loss summed over nested prefixes of the embedding."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from embedlab._validation import check_int, check_int_tuple, check_positive_float
from embedlab.losses._base import MetricLoss
from embedlab.losses._registry import make_loss, register_loss

__all__ = ["MatryoshkaLoss", "default_nested_dims"]


def default_nested_dims(dim: int, smallest: int = 8) -> tuple[int, ...]:
    """``(8, 16, 32, ..., dim)``: powers of two from ``smallest`` below ``dim``, then ``dim``."""
    dims: list[int] = []
    d = smallest
    while d < dim:
        dims.append(d)
        d *= 2
    dims.append(dim)
    return tuple(dims)


def build_bases(
    base: MetricLoss | str, dims: Sequence[int], n_classes: int | None
) -> nn.ModuleList:
    """One base loss per dim: a spec string is built for each dim (EBV needs its own
    vectors per prefix); an instance is shared."""
    if isinstance(base, MetricLoss):
        return nn.ModuleList([base] * len(dims))
    n = 2 if n_classes is None else n_classes
    return nn.ModuleList([make_loss(base, dim=d, n_classes=n) for d in dims])


@register_loss("matryoshka")
class MatryoshkaLoss(MetricLoss):
    """Weighted sum of a base loss over nested prefix dims, each prefix re-normalised.

    ``L = sum_k w_k * base(normalize(x[..., :d_k]), ...)``. Works for every
    ``input_kind`` of the base: the last axis of the embedding tensor(s) is
    sliced (both towers for ``"pairs"``); labels pass through.

    Kusupati et al., "Matryoshka Representation Learning", NeurIPS 2022.

    Args:
        base: the loss to wrap, an instance (shared by all dims) or a spec
            string (one loss per dim; default ``"supcon"``).
        dims: increasing prefix sizes, e.g. ``(8, 16, 32, 64)`` or ``"8-16-32-64"``;
            default powers of two from 8 up to ``dim``.
        weights: one weight per dim, default all 1.
        dim: full embedding dim (given by :func:`make_loss`); the last dim must not exceed it.
        n_classes: passed on to base losses built from a spec string.

    Shapes:
        as the base loss, e.g. ``forward(embeddings (batch, dim), labels (batch,)) -> ()``.

    Example:
        >>> import torch
        >>> loss_fn = MatryoshkaLoss("supcon", dims=(8, 16, 32))
        >>> float(loss_fn(torch.randn(16, 32), torch.arange(16) % 4)) > 0
        True
    """

    def __init__(
        self,
        base: MetricLoss | str = "supcon",
        *,
        dims: Sequence[int] | str | None = None,
        weights: Sequence[float] | None = None,
        dim: int | None = None,
        n_classes: int | None = None,
    ) -> None:
        super().__init__()
        if dims is None:
            if dim is None:
                raise ValueError("dims must be given when dim is None")
            dims = default_nested_dims(check_int("dim", dim, min_value=1))
        self.dims = check_int_tuple("dims", dims)
        if not self.dims or any(b <= a for a, b in zip(self.dims, self.dims[1:], strict=False)):
            raise ValueError(f"dims must be strictly increasing and non-empty, got {self.dims}")
        if dim is not None and self.dims[-1] > dim:
            raise ValueError(f"dims must be <= dim={dim}, got {self.dims}")
        w = [1.0] * len(self.dims) if weights is None else list(weights)
        if len(w) != len(self.dims):
            raise ValueError(
                f"weights must have one entry per dim ({len(self.dims)}), got {len(w)}"
            )
        self.weights = tuple(check_positive_float("weights", v, strict=False) for v in w)
        self.bases = build_bases(base, self.dims, n_classes)
        first: MetricLoss = self.bases[0]  # type: ignore[assignment]
        self.input_kind = first.input_kind

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, **kwargs: Any
    ) -> torch.Tensor:
        if x.shape[-1] < self.dims[-1]:
            raise ValueError(
                f"embeddings must have at least {self.dims[-1]} dims (the largest of dims), "
                f"got {x.shape[-1]}"
            )
        total = x.new_zeros(())
        for d, w, base in zip(self.dims, self.weights, self.bases, strict=True):
            xd = F.normalize(x[..., :d], dim=-1)
            yd = y
            if self.input_kind == "pairs" and y is not None:
                yd = F.normalize(y[..., :d], dim=-1)
            term: torch.Tensor = base(xd, yd, **kwargs)
            total = total + w * term
        return total

    def predict(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Prediction of the base loss on the full (largest) prefix."""
        last: MetricLoss = self.bases[-1]  # type: ignore[assignment]
        return last.predict(F.normalize(embeddings[..., : self.dims[-1]], dim=-1))
