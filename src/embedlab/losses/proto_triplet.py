"""Proto-Triplet: an episodic triplet loss over class prototypes."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from embedlab._validation import check_positive_float
from embedlab.losses._base import MetricLoss, check_label_batch, zero_loss
from embedlab.losses._registry import register_loss
from embedlab.losses.distances import Distance, LpDistance, make_distance

__all__ = ["ProtoTripletLoss", "class_prototypes"]


def class_prototypes(
    embeddings: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class means: ``(n_present_classes, dim)`` and, per row, the prototype index ``(batch,)``."""
    classes, inverse = torch.unique(labels, return_inverse=True)
    onehot = F.one_hot(inverse, classes.numel()).to(embeddings.dtype)  # (batch, c)
    protos = (onehot.T @ embeddings) / onehot.sum(0)[:, None]
    return protos, inverse


@register_loss("proto_triplet")
class ProtoTripletLoss(MetricLoss):
    """Triplet loss of each sample against its own and every other class prototype.

    Prototypes are the class means of the episode (batch). For sample ``i`` and
    every other class ``c``: ``[d(x_i, P_{y_i}) - d(x_i, P_c) + margin]_+``,
    averaged over all (sample, other class) terms. The distance is squared L2
    on normalised embeddings by default (prototypes are means of normalised
    embeddings).

    Mendez-Ruiz et al., "SuSana Distancia is all you need: Enforcing class
    separability in metric learning via two novel distance-based loss
    functions for few-shot image classification", 2023.

    Args:
        margin: ``> 0``.
        distance: default ``LpDistance(power=2, normalize_embeddings=False)`` applied to
            normalised embeddings and their prototypes.

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,)) -> ()``.

    Example:
        >>> import torch
        >>> float(ProtoTripletLoss()(torch.randn(12, 8), torch.arange(12) % 3)) >= 0
        True
    """

    needs_negatives = True

    def __init__(self, *, margin: float = 0.2, distance: Distance | str | None = None) -> None:
        super().__init__()
        self.margin = check_positive_float("margin", margin)
        self.distance = make_distance(distance, LpDistance(power=2, normalize_embeddings=False))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb, lab, ok = check_label_batch(embeddings, labels, needs_negatives=True)
        if not ok:
            return zero_loss(emb)
        x = F.normalize(emb, dim=1)
        protos, inv = class_prototypes(x, lab)
        mat = self.distance.pairwise(x, protos)  # (batch, c)
        own = mat.gather(1, inv[:, None])
        others = torch.ones_like(mat, dtype=torch.bool).scatter(1, inv[:, None], False)
        losses = F.relu(self.distance.violation(own, mat) + self.margin)
        return losses[others].mean()
