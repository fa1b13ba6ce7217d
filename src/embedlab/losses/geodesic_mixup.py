"""Geodesic multi-modal mixup: slerp-mixed hard negatives in a CLIP-style loss."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from embedlab._validation import (
    check_embeddings,
    check_int,
    check_positive_float,
    check_same_batch,
)
from embedlab.losses._base import MetricLoss, has_pairs, zero_loss
from embedlab.losses._registry import register_loss

__all__ = ["GeodesicMixupLoss", "slerp"]


def slerp(a: torch.Tensor, b: torch.Tensor, s: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation of unit rows: ``sin(s t)/sin t * a + sin((1-s) t)/sin t * b``.

    ``t = arccos(<a, b>)``; ``s = 1`` gives ``a``, ``s = 0`` gives ``b``. Where ``t`` is
    (nearly) 0 or pi the weights fall back to ``s`` and ``1 - s`` and the result is
    re-normalised, so neither values nor gradients become NaN.

    Args:
        a, b: ``(n, dim)`` unit vectors; s: scalar or ``(n,)``.
    """
    s_t = torch.as_tensor(s, dtype=a.dtype, device=a.device)
    if s_t.dim() == 1:
        s_t = s_t[:, None]
    cos = (a * b).sum(-1, keepdim=True)
    limit = 1 - 1e-6
    theta = torch.arccos(cos.clamp(-limit, limit))
    sin = torch.sin(theta)
    small = sin < 1e-4
    safe = torch.where(small, torch.ones_like(sin), sin)
    wa = torch.where(small, s_t.expand_as(sin), torch.sin(s_t * theta) / safe)
    wb = torch.where(small, (1 - s_t).expand_as(sin), torch.sin((1 - s_t) * theta) / safe)
    return F.normalize(wa * a + wb * b, dim=-1)


@register_loss("geodesic_mixup")
class GeodesicMixupLoss(MetricLoss):
    """CLIP loss plus geodesic-mixup hard negatives for a two-tower (image, text) model.

    With unit ``a``, ``b`` and ``m_i = slerp(a_i, b_i, lam)``:
    ``L = CLIP(a, b) + weight * M2``, where ``CLIP`` is the symmetric cross-entropy
    of ``a b^T / T`` against the diagonal, and ``M2`` the same with the mixed
    ``m_j`` (``j != i``) as extra negatives: ``-log(e^{a_i b_i/T} / (e^{a_i b_i/T} +
    sum_{j != i} e^{a_i m_j/T}))``, averaged over both towers.

    Oh et al., "Geodesic Multi-Modal Mixup for Robust Fine-Tuning", NeurIPS 2023.

    Args:
        temperature: T, ``> 0``.
        alpha: ``lam ~ Beta(alpha, alpha)`` per batch when ``forward`` gets no ``lam``.
        weight: weight of the mixup term, ``>= 0``.
        seed: seeds lam.

    Shapes:
        ``forward(a (batch, dim), b (batch, dim), *, lam: float | None) -> ()``.

    Example:
        >>> import torch
        >>> loss_fn = GeodesicMixupLoss()
        >>> float(loss_fn(torch.randn(8, 16), torch.randn(8, 16), lam=0.5)) > 0
        True
    """

    input_kind = "pairs"

    def __init__(
        self,
        *,
        temperature: float = 0.05,
        alpha: float = 0.5,
        weight: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.temperature = check_positive_float("temperature", temperature)
        self.alpha = check_positive_float("alpha", alpha)
        self.weight = check_positive_float("weight", weight, strict=False)
        self.seed = check_int("seed", seed)
        self._rng = np.random.default_rng(self.seed)

    def forward(
        self, a: torch.Tensor, b: torch.Tensor, *, lam: float | None = None
    ) -> torch.Tensor:
        a = check_embeddings("a", a)
        b = check_embeddings("b", b)
        check_same_batch("a", a, "b", b)
        if not has_pairs(torch.arange(a.shape[0]), needs_positives=False, needs_negatives=True):
            return zero_loss(a) + zero_loss(b)
        if lam is None:
            lam = float(self._rng.beta(self.alpha, self.alpha))
        a = F.normalize(a, dim=-1)
        b = F.normalize(b, dim=-1)
        t = self.temperature
        logits = a @ b.T / t  # (n, n)
        target = torch.arange(a.shape[0], device=a.device)
        clip = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        m = slerp(a, b, lam)
        eye = torch.eye(a.shape[0], dtype=torch.bool, device=a.device)
        pos = logits.diagonal()
        lowest = torch.finfo(logits.dtype).min
        terms = []
        for x in (a, b):
            neg = (x @ m.T / t).masked_fill(eye, lowest)
            terms.append((torch.logaddexp(pos, torch.logsumexp(neg, dim=1)) - pos).mean())
        return clip + self.weight * (terms[0] + terms[1]) / 2
