"""Hydra-style gated pairs: a learned feature gate per class pair."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from embedlab._validation import (
    check_class_ids,
    check_int,
    check_optional_int,
    check_positive_float,
)
from embedlab.losses._base import MetricLoss, check_label_batch, label_masks, zero_loss
from embedlab.losses._registry import register_loss
from embedlab.losses.supcon import soft_target_cross_entropy

__all__ = ["HydraLoss"]


@register_loss("hydra")
class HydraLoss(MetricLoss):
    """SupCon over cosines of gated embeddings, with one learned gate per class pair.

    For samples ``i``, ``j`` with classes ``c``, ``c'`` the gate is
    ``g = sigmoid(G[c, c'])`` (``(dim,)``, symmetric in ``c``, ``c'``) and the
    similarity is ``cos(g * x_i, g * x_j)``: each class pair compares the
    embeddings in its own learned subspace, so any pair can be made close in
    some subspace while classes stay separable in others. The loss is SupCon
    (same class = positive) on these similarities / ``temperature`` plus
    ``sparsity`` x the mean gate value (keeps gates from opening fully).

    Gates: ``rank=None`` keeps a full parameter ``G`` of shape
    ``(n_classes, n_classes, dim)`` (used as ``(G[c, c'] + G[c', c]) / 2``);
    ``rank=r`` uses ``G[c, c'] = (E_c * E_c') @ W`` with ``E (n_classes, r)`` and
    ``W (r, dim)``, i.e. ``n_classes * r + r * dim`` parameters.

    After "Rethinking Positive Pairs in Contrastive Learning" (Hydra), 2024;
    loss form: Khosla et al., SupCon, NeurIPS 2020.

    Args:
        dim: embedding dimension.
        n_classes: number of classes (labels in ``[0, n_classes)``).
        temperature: ``> 0``.
        rank: ``None`` (full gates) or the low rank ``r >= 1``.
        sparsity: weight of the mean-gate penalty, ``>= 0``.
        seed: seeds the gate initialisation.

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,)) -> ()``.

    Example:
        >>> import torch
        >>> loss_fn = HydraLoss(dim=8, n_classes=3)
        >>> float(loss_fn(torch.randn(12, 8), torch.arange(12) % 3)) > 0
        True
    """

    needs_positives = True
    needs_negatives = True

    def __init__(
        self,
        *,
        dim: int,
        n_classes: int,
        temperature: float = 0.1,
        rank: int | None = None,
        sparsity: float = 0.01,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, min_value=1)
        self.n_classes = check_int("n_classes", n_classes, min_value=1)
        self.temperature = check_positive_float("temperature", temperature)
        self.rank = check_optional_int("rank", rank, min_value=1)
        self.sparsity = check_positive_float("sparsity", sparsity, strict=False)
        gen = torch.Generator().manual_seed(check_int("seed", seed))
        if self.rank is None:
            # start with gates about 0.88 open, slightly perturbed
            init = 2.0 + 0.1 * torch.randn(n_classes, n_classes, dim, generator=gen)
            self.gates = nn.Parameter(init)
        else:
            self.class_factors = nn.Parameter(
                1 + 0.1 * torch.randn(n_classes, self.rank, generator=gen)
            )
            self.dim_factors = nn.Parameter(
                2.0 / self.rank + 0.1 * torch.randn(self.rank, dim, generator=gen)
            )

    def gate_logits(self) -> torch.Tensor:
        """``(n_classes, n_classes, dim)`` symmetric gate logits."""
        if self.rank is None:
            return (self.gates + self.gates.transpose(0, 1)) / 2
        e = self.class_factors
        return torch.einsum("cr,kr,rd->ckd", e, e, self.dim_factors)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb, lab, ok = check_label_batch(
            embeddings, labels, needs_positives=True, needs_negatives=True
        )
        check_class_ids("labels", lab, self.n_classes)
        if emb.shape[1] != self.dim:
            raise ValueError(f"embeddings must have dim={self.dim}, got {emb.shape[1]}")
        if not ok:
            return zero_loss(emb) + zero_loss(self.gate_logits())
        gates = torch.sigmoid(self.gate_logits().to(emb.dtype))  # (c, c, dim)
        g2 = (gates * gates)[lab][:, lab]  # (batch, batch, dim)
        x = F.normalize(emb, dim=1)
        num = torch.einsum("ijd,id,jd->ij", g2, x, x)
        sq = x * x
        ni = torch.einsum("ijd,id->ij", g2, sq)
        nj = torch.einsum("ijd,jd->ij", g2, sq)
        cos = num / (ni * nj).clamp_min(1e-12).sqrt()
        pos, neg = label_masks(lab)
        sup = soft_target_cross_entropy(cos / self.temperature, pos.to(emb.dtype), pos | neg)
        return sup + self.sparsity * gates.mean()
