"""MV-DHEL: multi-view decoupled hyperspherical energy loss."""

from __future__ import annotations

import torch

from embedlab._validation import check_positive_float
from embedlab.losses._base import MetricLoss, zero_loss
from embedlab.losses._registry import register_loss
from embedlab.losses._views import prepare_views

__all__ = ["MVDHELLoss"]


@register_loss("mv_dhel")
class MVDHELLoss(MetricLoss):
    """Multi-view DHEL: alignment over view pairs, uniformity within each view only.

    ``L_i = -log sum_{l < m} exp(s(z_i^l, z_i^m)) + sum_l log sum_{j != i} exp(s(z_i^l, z_j^l))``
    with ``s = <., .> / T`` on normalised views, averaged over instances. The
    denominator holds only negatives of the same view (no positives), which
    decouples alignment from uniformity. With ``labels``, same-label instances
    are left out of the denominators.

    Koromilas et al., "A Principled Framework for Multi-View Contrastive
    Learning", 2025.

    Args:
        temperature: T, ``> 0`` (paper default 0.2).

    Shapes:
        ``forward(views (batch, n_views, dim), labels (batch,) | None) -> ()``, any n_views >= 2.

    Example:
        >>> import torch
        >>> loss = MVDHELLoss()(torch.randn(8, 4, 16))
        >>> loss.shape
        torch.Size([])
    """

    input_kind = "views"
    needs_negatives = True

    def __init__(self, *, temperature: float = 0.2) -> None:
        super().__init__()
        self.temperature = check_positive_float("temperature", temperature)

    def forward(self, views: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z, other, ok = prepare_views(views, labels)
        if not ok:
            return zero_loss(views)
        v = z.shape[1]
        lowest = torch.finfo(z.dtype).min
        own = torch.einsum("ild,imd->ilm", z, z) / self.temperature  # (b, v, v)
        upper = torch.triu(torch.ones(v, v, dtype=torch.bool, device=z.device), diagonal=1)
        pos_lse = torch.logsumexp(own[:, upper], dim=1)  # (b,)
        within = torch.einsum("ild,jld->lij", z, z) / self.temperature  # (v, b, b)
        neg_lse = torch.logsumexp(within.masked_fill(~other[None], lowest), dim=2)  # (v, b)
        # instances without a negative (all others share the label) get no uniformity term
        has_neg = other.any(dim=1)
        return (neg_lse.sum(0) * has_neg - pos_lse).mean()
