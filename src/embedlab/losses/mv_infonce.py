"""MV-InfoNCE: InfoNCE with one term per instance over all of its views."""

from __future__ import annotations

import torch

from embedlab._validation import check_positive_float
from embedlab.losses._base import MetricLoss, zero_loss
from embedlab.losses._registry import register_loss
from embedlab.losses._views import prepare_views

__all__ = ["MVInfoNCELoss"]


@register_loss("mv_infonce")
class MVInfoNCELoss(MetricLoss):
    """Multi-view InfoNCE: all view pairs of an instance in one term.

    With ``z_i^l`` the normalised view ``l`` of instance ``i`` and ``s = <., .> / T``:
    ``L_i = -log( sum_{l != m} exp(s(z_i^l, z_i^m)) /
    sum_l sum_{(j, m) != (i, l)} exp(s(z_i^l, z_j^m)) )``, averaged over instances.
    The denominator holds every other view of the batch (the instance's own other
    views included). With ``labels``, views of other instances with the same
    label are left out of the denominator (they are not negatives).

    Koromilas et al., "A Principled Framework for Multi-View Contrastive
    Learning", 2025.

    Args:
        temperature: T, ``> 0`` (paper default 0.2).

    Shapes:
        ``forward(views (batch, n_views, dim), labels (batch,) | None) -> ()``, any n_views >= 2.

    Example:
        >>> import torch
        >>> float(MVInfoNCELoss()(torch.randn(8, 3, 16))) > 0
        True
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
        b, v, _ = z.shape
        s = torch.einsum("ild,jmd->iljm", z, z) / self.temperature  # (b, v, b, v)
        eye_b = torch.eye(b, dtype=torch.bool, device=z.device)
        eye_v = torch.eye(v, dtype=torch.bool, device=z.device)
        lowest = torch.finfo(s.dtype).min
        own = s[torch.arange(b), :, torch.arange(b), :]  # (b, v, v)
        pos_lse = torch.logsumexp(own.masked_fill(eye_v, lowest).reshape(b, -1), dim=1)
        # denominator: own other views + all views of the negatives
        keep = (eye_b[:, None, :, None] & ~eye_v[None, :, None, :]) | other[:, None, :, None]
        neg_lse = torch.logsumexp(s.masked_fill(~keep, lowest).reshape(b, -1), dim=1)
        return (neg_lse - pos_lse).mean()
