"""Supervised contrastive loss (SupCon)."""

from __future__ import annotations

import torch

from embedlab._validation import check_positive_float
from embedlab.losses._base import MetricLoss, check_label_batch, label_masks, zero_loss
from embedlab.losses._registry import register_loss
from embedlab.losses.distances import CosineSimilarity, Distance, make_distance

__all__ = ["SupConLoss", "soft_target_cross_entropy"]


def soft_target_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Mean over rows of ``-sum_j t_ij log softmax_j(logits_ij) / sum_j t_ij``.

    The softmax runs over the ``valid`` entries of each row; rows without a
    positive target (or without a valid entry) are left out.

    Args:
        logits: ``(n, m)``.
        targets: ``(n, m)`` non-negative weights of the positives.
        valid: ``(n, m)`` bool.
    """
    masked = logits.masked_fill(~valid, torch.finfo(logits.dtype).min)
    log_prob = masked - torch.logsumexp(masked, dim=1, keepdim=True)
    t = targets * valid
    weight = t.sum(dim=1)
    rows = weight > 0
    if not bool(rows.any()):
        return zero_loss(logits)
    per_row = -(t * log_prob.masked_fill(~valid, 0.0)).sum(dim=1)
    return (per_row[rows] / weight[rows]).mean()


@register_loss("supcon")
class SupConLoss(MetricLoss):
    """Supervised contrastive loss: every same-label sample is a positive of the anchor.

    ``L_i = -1/|P(i)| sum_{p in P(i)} log( exp(s_ip / T) / sum_{a != i} exp(s_ia / T) )``,
    averaged over the anchors that have a positive (the "L_out" form). A
    distance (not inverted) enters as ``s = -d``.

    Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020.

    Args:
        temperature: T, ``> 0``.
        distance: default :class:`CosineSimilarity`.

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,)) -> ()``.

    Example:
        >>> import torch
        >>> loss_fn = SupConLoss(temperature=0.1)
        >>> float(loss_fn(torch.randn(8, 4), torch.arange(8) % 2)) > 0
        True
    """

    needs_positives = True
    needs_negatives = True

    def __init__(self, *, temperature: float = 0.1, distance: Distance | str | None = None) -> None:
        super().__init__()
        self.temperature = check_positive_float("temperature", temperature)
        self.distance = make_distance(distance, CosineSimilarity())

    def logits(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``(n, m)`` similarity logits ``s / T``."""
        mat = self.distance.pairwise(x, y)
        return -self.distance.as_distance(mat) / self.temperature

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb, lab, ok = check_label_batch(
            embeddings, labels, needs_positives=True, needs_negatives=True
        )
        if not ok:
            return zero_loss(emb)
        pos, neg = label_masks(lab)
        return soft_target_cross_entropy(self.logits(emb), pos.to(emb.dtype), pos | neg)

    def soft_loss(
        self,
        anchors: torch.Tensor,
        others: torch.Tensor,
        targets: torch.Tensor,
        valid: torch.Tensor,
    ) -> torch.Tensor:
        """Soft-target form used by Metrix: cross-entropy with weights ``targets``.

        Args:
            anchors: ``(batch, dim)``; others: ``(n_other, dim)``;
            targets: ``(batch, n_other)`` in [0, 1]; valid: ``(batch, n_other)`` bool.
        """
        return soft_target_cross_entropy(self.logits(anchors, others), targets, valid)
