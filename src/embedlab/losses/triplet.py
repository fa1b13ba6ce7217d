"""FaceNet triplet loss with online mining."""

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
from embedlab.losses.miners import AllTripletsMiner, Miner, make_miner

__all__ = ["TripletLoss"]


@register_loss("triplet")
class TripletLoss(MetricLoss):
    """Triplet loss ``[d(a, p) - d(a, n) + margin]_+`` over mined triplets.

    With the defaults this is FaceNet's loss: squared L2 distance on
    L2-normalised embeddings, averaged over the triplets the miner returns
    (all valid triplets by default; pass ``SemiHardMiner`` for FaceNet's online
    semi-hard mining). With a similarity (``is_inverted``) the hinge is
    ``[s(a, n) - s(a, p) + margin]_+``. A batch whose miner finds no triplet
    gives a zero loss.

    Schroff, Kalenichenko, Philbin, "FaceNet: A Unified Embedding for Face
    Recognition and Clustering", CVPR 2015.

    Args:
        margin: alpha, ``> 0``.
        distance: a :class:`Distance` or its name; default ``LpDistance(power=2)``.
        miner: a triplet :class:`Miner` or its name (``all``, ``hard``,
            ``semihard``, ``batch_hard``); default all triplets. A named
            ``semihard`` miner gets this loss's margin.
        reduction: ``mean`` (FaceNet), ``sum``, or ``mean_nonzero`` (mean over
            the triplets with a positive loss, PML's ``AvgNonZeroReducer``).

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,)) -> ()``.

    Example:
        >>> import torch
        >>> from embedlab.losses import TripletLoss
        >>> from embedlab.miners import SemiHardMiner
        >>> loss_fn = TripletLoss(margin=0.2, miner=SemiHardMiner())
        >>> loss = loss_fn(torch.randn(32, 16, requires_grad=True), torch.arange(32) % 4)
        >>> loss.shape
        torch.Size([])
    """

    needs_positives = True
    needs_negatives = True

    def __init__(
        self,
        *,
        margin: float = 0.2,
        distance: Distance | str | None = None,
        miner: Miner | str | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__()
        self.margin = check_positive_float("margin", margin)
        self.distance = make_distance(distance, LpDistance(power=2))
        self.miner = make_miner(miner, AllTripletsMiner(), margin=self.margin)
        if self.miner.returns_pairs:
            raise ValueError(f"miner must return triplets, got the pair miner {self.miner!r}")
        self.reduction = check_reduction(reduction)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb, lab, ok = check_label_batch(
            embeddings, labels, needs_positives=True, needs_negatives=True
        )
        if not ok:
            return zero_loss(emb)
        mat = self.distance.pairwise(emb)
        if self.miner.distance is None and not self.miner.external:
            a, p, n = self.miner.mine(mat.detach(), lab, is_inverted=self.distance.is_inverted)
        else:
            a, p, n = self.miner(emb, lab)
        if a.numel() == 0:
            return zero_loss(emb)
        losses = F.relu(self.distance.violation(mat[a, p], mat[a, n]) + self.margin)
        return reduce_losses(losses, self.reduction, emb)
