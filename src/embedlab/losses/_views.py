"""Shared input handling of the multi-view losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from embedlab._validation import check_batch_labels, check_embeddings
from embedlab.losses._base import has_pairs

__all__ = ["prepare_views"]


def prepare_views(
    views: torch.Tensor, labels: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Normalised ``views (batch, n_views, dim)``, an ``other (batch, batch)`` mask of the
    instances that count as negatives of each other, and whether there are any."""
    v = check_embeddings("views", views, ndim=3)
    if v.shape[1] < 2:
        raise ValueError(f"views must have n_views >= 2, got {v.shape[1]}")
    b = v.shape[0]
    if labels is None:
        lab = torch.arange(b, device=v.device)
    else:
        lab = check_batch_labels(labels, b).to(v.device)
    ok = has_pairs(lab, needs_positives=False, needs_negatives=True)
    other = lab[:, None] != lab[None, :]
    return F.normalize(v, dim=-1), other, ok
