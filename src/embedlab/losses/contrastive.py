"""Contrastive (pair) loss with a positive and a negative margin."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from embedlab._validation import check_positive_float
from embedlab.losses._base import (
    MetricLoss,
    Reduction,
    check_label_batch,
    check_reduction,
    reduce_losses,
    zero_loss,
)
from embedlab.losses._registry import register_loss
from embedlab.losses.distances import Distance, LpDistance, make_distance
from embedlab.losses.miners import AllPairsMiner, Miner, make_miner

__all__ = ["ContrastiveLoss"]


@register_loss("contrastive")
class ContrastiveLoss(MetricLoss):
    """Pull positive pairs inside ``pos_margin``, push negative pairs beyond ``neg_margin``.

    For a distance: ``[d - pos_margin]_+`` on positive pairs and
    ``[neg_margin - d]_+`` on negative pairs; for a similarity the signs flip
    (``[pos_margin - s]_+``, ``[s - neg_margin]_+``). The loss is the reduced
    positive term plus the reduced negative term, each by default averaged over its
    non-zero pairs (as pytorch-metric-learning's ``AvgNonZeroReducer``): a plain mean
    over all negative pairs shrinks the push term as negatives clear the margin and
    lets the pull term (``pos_margin = 0``) dominate.

    Hadsell, Chopra, LeCun, "Dimensionality Reduction by Learning an Invariant
    Mapping", CVPR 2006.

    Args:
        pos_margin: margin of positive pairs, ``>= 0``.
        neg_margin: margin of negative pairs, ``>= 0``.
        distance: default ``LpDistance()`` (L2 on normalised embeddings).
        miner: a pair miner; default all pairs (:class:`AllPairsMiner`).
        reduction: ``mean_nonzero`` (default, PML's), ``mean`` or ``sum`` (per term).

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,)) -> ()``.

    Example:
        >>> import torch
        >>> loss_fn = ContrastiveLoss(neg_margin=1.0)
        >>> float(loss_fn(torch.randn(8, 4), torch.arange(8) % 2)) >= 0
        True
    """

    needs_positives = True
    needs_negatives = True

    def __init__(
        self,
        *,
        pos_margin: float = 0.0,
        neg_margin: float = 1.0,
        distance: Distance | str | None = None,
        miner: Miner | str | None = None,
        reduction: Reduction = "mean_nonzero",
    ) -> None:
        super().__init__()
        self.pos_margin = check_positive_float("pos_margin", pos_margin, strict=False)
        self.neg_margin = check_positive_float("neg_margin", neg_margin, strict=False)
        self.distance = make_distance(distance, LpDistance())
        self.miner = make_miner(miner, AllPairsMiner())
        if not self.miner.returns_pairs:
            raise ValueError(f"miner must return pairs (a1, p, a2, n), got {self.miner!r}")
        self.reduction = check_reduction(reduction)

    def pos_term(self, d: torch.Tensor) -> torch.Tensor:
        """Loss of a positive pair at distance / similarity ``d``."""
        if self.distance.is_inverted:
            return F.relu(self.pos_margin - d)
        return F.relu(d - self.pos_margin)

    def neg_term(self, d: torch.Tensor) -> torch.Tensor:
        """Loss of a negative pair at distance / similarity ``d``."""
        if self.distance.is_inverted:
            return F.relu(d - self.neg_margin)
        return F.relu(self.neg_margin - d)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb, lab, ok = check_label_batch(
            embeddings, labels, needs_positives=True, needs_negatives=True
        )
        if not ok:
            return zero_loss(emb)
        mat = self.distance.pairwise(emb)
        if self.miner.distance is None and not self.miner.external:
            a1, p, a2, n = self.miner.mine(mat.detach(), lab, is_inverted=self.distance.is_inverted)
        else:
            a1, p, a2, n = self.miner(emb, lab)
        pos = reduce_losses(self.pos_term(mat[a1, p]), self.reduction, emb)
        neg = reduce_losses(self.neg_term(mat[a2, n]), self.reduction, emb)
        return pos + neg

    def soft_loss(
        self,
        anchors: torch.Tensor,
        others: torch.Tensor,
        targets: torch.Tensor,
        valid: torch.Tensor,
    ) -> torch.Tensor:
        """Soft-target form used by Metrix: ``t * pos_term + (1 - t) * neg_term``.

        Args:
            anchors: ``(batch, dim)``.
            others: ``(n_other, dim)`` (e.g. mixed embeddings).
            targets: ``(batch, n_other)`` positiveness in [0, 1].
            valid: ``(batch, n_other)`` bool, the pairs that count.
        """
        d = self.distance.pairwise(anchors, others)
        losses = targets * self.pos_term(d) + (1 - targets) * self.neg_term(d)
        return reduce_losses(losses[valid], self.reduction, anchors)
