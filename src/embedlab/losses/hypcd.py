"""HypCD: supervised contrastive loss on the Poincaré ball, hybrid of distance and angle."""

from __future__ import annotations

import torch

from embedlab._validation import check_float_in_range, check_positive_float
from embedlab.losses._base import MetricLoss, check_label_batch, label_masks, zero_loss
from embedlab.losses._registry import register_loss
from embedlab.losses.distances import CosineSimilarity
from embedlab.losses.poincare import PoincareDistance
from embedlab.losses.supcon import soft_target_cross_entropy

__all__ = ["HypCDLoss"]


@register_loss("hypcd")
class HypCDLoss(MetricLoss):
    """Hybrid hyperbolic contrastive loss of HypCD: ``(1 - lam) L_angle + lam L_distance``.

    The embeddings are mapped into the Poincaré ball of curvature ``-c`` (feature clipping
    to ``clip_r``, then :func:`~embedlab.losses.poincare.expmap0`). Both terms are the
    supervised contrastive loss (:class:`~embedlab.losses.SupConLoss`, "L_out" form) over the
    batch, with logits ``-d_P(x_i, x_j) / T`` (hyperbolic distance) for ``L_distance`` and
    ``cos(x_i, x_j) / T`` (angle; ``expmap0`` is radial, so the angle is the Euclidean one)
    for ``L_angle``. ``lam = alpha * ramp``: HypCD ramps the distance weight linearly from 0
    to ``alpha`` (``hyper_max_weight``) over training; a trainer sets :attr:`ramp` in
    ``[0, 1]`` each epoch (default 1: the full weight).

    Self-supervised use (SimCLR): pass the two views of each sample with the sample index
    as label; the positives are then the other views of the same sample.

    Liu, He & Han, "Hyperbolic Category Discovery", CVPR 2025 (reference code: ``c = 0.1``,
    ``clip_r = 2.3``, supervised temperature 0.07). Differences: one temperature for both
    terms (the reference uses 1.0 for its self-supervised InfoNCE); plain Adam instead of
    the reference's SGD / Riemannian options.

    Args:
        alpha: the distance weight at the end of the ramp, in ``[0, 1]``; ``alpha = 0`` is the
            Euclidean (cosine) SupCon baseline.
        curvature: ``c > 0``.
        clip_r: feature-clipping radius (``None``: no clipping).
        temperature: ``T > 0``.

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,)) -> ()``.

    Example:
        >>> import torch
        >>> loss_fn = HypCDLoss(alpha=0.5)
        >>> float(loss_fn(torch.randn(8, 4), torch.arange(8) % 2)) > 0
        True
    """

    needs_positives = True
    needs_negatives = True

    def __init__(
        self,
        *,
        alpha: float = 1.0,
        curvature: float = 0.1,
        clip_r: float | None = 2.3,
        temperature: float = 0.07,
    ) -> None:
        super().__init__()
        self.alpha = check_float_in_range("alpha", alpha, 0.0, 1.0)
        self.temperature = check_positive_float("temperature", temperature)
        self.ball = PoincareDistance(curvature=curvature, clip_r=clip_r)
        self.curvature = self.ball.curvature
        self.clip_r = self.ball.clip_r
        self.ramp = 1.0
        self._cosine = CosineSimilarity()

    @property
    def distance_weight(self) -> float:
        """``lam = alpha * ramp``: the weight of the hyperbolic-distance term now."""
        return self.alpha * min(1.0, max(0.0, float(self.ramp)))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb, lab, ok = check_label_batch(
            embeddings, labels, needs_positives=True, needs_negatives=True
        )
        if not ok:
            return zero_loss(emb)
        pos, neg = label_masks(lab)
        targets, valid = pos.to(emb.dtype), pos | neg
        lam = self.distance_weight
        angle = soft_target_cross_entropy(
            self._cosine.pairwise(emb) / self.temperature, targets, valid
        )
        if lam == 0.0:
            return angle
        distance = soft_target_cross_entropy(
            -self.ball.pairwise(emb) / self.temperature, targets, valid
        )
        if lam == 1.0:
            return distance + zero_loss(angle)
        return (1.0 - lam) * angle + lam * distance
