"""ICNN loss: intra-class / inter-class nearest-neighbour score."""

from __future__ import annotations

import torch

from embedlab._validation import check_int
from embedlab.losses._base import MetricLoss, check_label_batch, label_masks, zero_loss
from embedlab.losses._registry import register_loss
from embedlab.losses.distances import Distance, LpDistance, make_distance

__all__ = ["ICNNLoss"]


@register_loss("icnn")
class ICNNLoss(MetricLoss):
    """One minus the intra/inter-class nearest-neighbour (ICNN) score of each sample.

    For sample ``i``: ``intra_i`` is the mean distance to its ``k`` nearest
    same-class neighbours and ``inter_i`` the mean distance to its ``k`` nearest
    other-class neighbours (fewer when the batch has fewer). The score
    ``inter_i / (intra_i + inter_i)`` is in [0, 1] and near 1 for a sample close to
    its class and far from the others; the loss is ``mean_i (1 - score_i)`` over
    the samples that have both kinds of neighbour. Our reading of the paper's
    score: a ratio form of its intra/inter nearest-neighbour terms.

    Mendez-Ruiz et al., "SuSana Distancia is all you need: Enforcing class
    separability in metric learning via two novel distance-based loss
    functions for few-shot image classification", 2023.

    Args:
        k: neighbours per side, ``>= 1``.
        distance: a distance (not a similarity); default L2 on normalised embeddings.

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,)) -> ()``.

    Example:
        >>> import torch
        >>> 0 <= float(ICNNLoss(k=2)(torch.randn(12, 8), torch.arange(12) % 3)) <= 1
        True
    """

    needs_positives = True
    needs_negatives = True

    def __init__(self, *, k: int = 3, distance: Distance | str | None = None) -> None:
        super().__init__()
        self.k = check_int("k", k, min_value=1)
        self.distance = make_distance(distance, LpDistance())
        if self.distance.is_inverted:
            raise ValueError(f"distance must be a distance, not a similarity, got {self.distance}")

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb, lab, ok = check_label_batch(
            embeddings, labels, needs_positives=True, needs_negatives=True
        )
        if not ok:
            return zero_loss(emb)
        mat = self.distance.pairwise(emb)
        pos, neg = label_masks(lab)
        intra = _mean_k_smallest(mat, pos, self.k)
        inter = _mean_k_smallest(mat, neg, self.k)
        keep = pos.any(1) & neg.any(1)
        score = inter[keep] / (intra[keep] + inter[keep]).clamp_min(1e-12)
        return (1 - score).mean()


def _mean_k_smallest(mat: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Per row, the mean of the ``min(k, count)`` smallest entries of ``mat`` under ``mask``."""
    kk = min(k, mat.shape[1])
    big = torch.finfo(mat.dtype).max
    vals, idx = mat.masked_fill(~mask, big).topk(kk, dim=1, largest=False)
    took = mask.gather(1, idx)
    count = took.sum(1).clamp_min(1)
    return (vals * took).sum(1) / count
