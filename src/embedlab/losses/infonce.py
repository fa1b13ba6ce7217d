"""InfoNCE / NT-Xent over a labelled batch or over two stacked views."""

from __future__ import annotations

import torch

from embedlab._validation import check_embeddings, check_positive_float
from embedlab.losses._base import MetricLoss, check_label_batch, label_masks, zero_loss
from embedlab.losses._registry import register_loss
from embedlab.losses.distances import CosineSimilarity, Distance, make_distance
from embedlab.losses.supcon import soft_target_cross_entropy

__all__ = ["InfoNCELoss"]


@register_loss("infonce")
class InfoNCELoss(MetricLoss):
    """NT-Xent: one softmax term per positive pair, against the anchor's negatives only.

    For every positive pair ``(i, p)``:
    ``-log( exp(s_ip/T) / (exp(s_ip/T) + sum_{n: y_n != y_i} exp(s_in/T)) )``,
    averaged over all positive pairs. Unlike :class:`SupConLoss` the other
    positives are not in the denominator.

    Without ``labels`` the batch is two stacked views ``[a; b]`` of ``n = batch/2``
    instances (SimCLR): rows ``i`` and ``i + n`` are the positive pair and every
    other row is a negative. ``loss(a, b)`` with two ``(n, dim)`` views is the same as
    ``loss(torch.cat([a, b]))`` (the in-batch-negatives form of sentence-transformers'
    ``MultipleNegativesRankingLoss``, symmetric).

    van den Oord et al., "Representation Learning with Contrastive Predictive
    Coding", 2018; Chen et al., "A Simple Framework for Contrastive Learning of
    Visual Representations" (SimCLR), ICML 2020.

    Args:
        temperature: T, ``> 0``.
        distance: default :class:`CosineSimilarity` (a distance enters as ``-d``).

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,) | None) -> ()``, or
        ``forward(a (n, dim), b (n, dim)) -> ()`` for two views.

    Example:
        >>> import torch
        >>> loss_fn = InfoNCELoss(temperature=0.1)
        >>> float(loss_fn(torch.randn(8, 4), torch.arange(8) % 4)) > 0
        True
    """

    needs_positives = True
    needs_negatives = True

    def __init__(
        self, *, temperature: float = 0.07, distance: Distance | str | None = None
    ) -> None:
        super().__init__()
        self.temperature = check_positive_float("temperature", temperature)
        self.distance = make_distance(distance, CosineSimilarity())

    def logits(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``(n, m)`` similarity logits ``s / T``."""
        return -self.distance.as_distance(self.distance.pairwise(x, y)) / self.temperature

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if (
            isinstance(labels, torch.Tensor)
            and labels.is_floating_point()
            and labels.ndim == 2
            and isinstance(embeddings, torch.Tensor)
            and labels.shape == embeddings.shape
        ):  # loss(a, b): row i of a and row i of b are the positive pair
            embeddings, labels = torch.cat([embeddings, labels]), None
        if labels is None:
            emb = check_embeddings("embeddings", embeddings)
            if emb.shape[0] % 2:
                raise ValueError(
                    "embeddings must stack two views [a; b] (an even batch) when labels is "
                    f"None, got batch {emb.shape[0]}"
                )
            labels = torch.arange(emb.shape[0] // 2, device=emb.device).repeat(2)
        emb, lab, ok = check_label_batch(
            embeddings, labels, needs_positives=True, needs_negatives=True
        )
        if not ok:
            return zero_loss(emb)
        logits = self.logits(emb)
        pos, neg = label_masks(lab)
        lowest = torch.finfo(logits.dtype).min
        neg_lse = torch.logsumexp(logits.masked_fill(~neg, lowest), dim=1)  # (batch,)
        a, p = torch.nonzero(pos, as_tuple=True)
        s = logits[a, p]
        return (torch.logaddexp(s, neg_lse[a]) - s).mean()

    def soft_loss(
        self,
        anchors: torch.Tensor,
        others: torch.Tensor,
        targets: torch.Tensor,
        valid: torch.Tensor,
    ) -> torch.Tensor:
        """Soft-target form used by Metrix (as :meth:`SupConLoss.soft_loss`).

        Args:
            anchors: ``(batch, dim)``; others: ``(n_other, dim)``;
            targets: ``(batch, n_other)`` in [0, 1]; valid: ``(batch, n_other)`` bool.
        """
        return soft_target_cross_entropy(self.logits(anchors, others), targets, valid)
