"""SupReMix: supervised contrastive regression with mixed hard pairs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from embedlab._validation import check_fraction, check_positive_float
from embedlab.losses._base import MetricLoss, check_label_batch, zero_loss
from embedlab.losses._registry import register_loss

__all__ = ["SupReMixLoss"]


@register_loss("supremix")
class SupReMixLoss(MetricLoss):
    """Contrastive regression: SupCon over real labels with mixed hard negatives and positives.

    On normalised embeddings ``z`` with real labels ``y``, for anchor ``i``:

    - positives: samples with ``|y_j - y_i| <= tol`` and one *hard positive*
      ``normalize(lam z_j + (1 - lam) z_k)`` where ``y_j`` / ``y_k`` are the nearest labels
      below / above ``y_i`` (first such sample) and ``lam = (y_k - y_i) / (y_k - y_j)``,
      so the mixed label equals ``y_i`` (anchors at the label extremes have none);
    - hard negatives: ``normalize(neg_lambda z_i + (1 - neg_lambda) z_j)`` for every
      ``j`` with a distinct label (mixed label strictly between ``y_i`` and ``y_j``);
    - the denominator holds all other samples, the hard negatives and the hard positive.

    ``L_i = -1/|P(i)| sum_{p in P(i)} log(exp(s_ip / T) / sum_a exp(s_ia / T))``,
    averaged over anchors with a positive. Similarities with the hard negatives
    come in closed form from ``<z_i, z_j>`` (no ``(batch, batch, dim)`` tensor).

    Wu et al., "Mixup Your Own Pairs: Supervised Contrastive Learning for
    Regression with Mixed Hard Pairs" (SupReMix), 2023.

    Args:
        temperature: T, ``> 0``.
        neg_lambda: anchor share of a hard negative, in (0, 1).
        tol: labels closer than this are equal, ``>= 0``.

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,) float) -> ()``.

    Example:
        >>> import torch
        >>> float(SupReMixLoss()(torch.randn(8, 4), torch.linspace(0, 1, 8))) > 0
        True
    """

    float_labels = True
    needs_negatives = True

    def __init__(
        self, *, temperature: float = 0.1, neg_lambda: float = 0.5, tol: float = 0.0
    ) -> None:
        super().__init__()
        self.temperature = check_positive_float("temperature", temperature)
        self.neg_lambda = check_fraction("neg_lambda", neg_lambda)
        self.tol = check_positive_float("tol", tol, strict=False)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb, y, ok = check_label_batch(embeddings, labels, needs_negatives=True, floating=True)
        if not ok:
            return zero_loss(emb)
        y = y.to(emb.dtype)
        z = F.normalize(emb, dim=1)
        b = z.shape[0]
        t = self.temperature
        lowest = torch.finfo(z.dtype).min
        sim = z @ z.T  # (b, b)
        eye = torch.eye(b, dtype=torch.bool, device=z.device)
        diff = y[None, :] - y[:, None]  # y_j - y_i
        same = (diff.abs() <= self.tol) & ~eye
        distinct = diff.abs() > self.tol

        # hard negatives: <z_i, normalize(l z_i + (1-l) z_j)> = (l + (1-l) s_ij) / norm_ij
        lam = self.neg_lambda
        norm = (lam**2 + (1 - lam) ** 2 + 2 * lam * (1 - lam) * sim).clamp_min(1e-12).sqrt()
        s_neg = (lam + (1 - lam) * sim) / norm

        # hard positive from the nearest labels below (j) and above (k)
        big = torch.finfo(z.dtype).max
        below = distinct & (diff < 0)
        above = distinct & (diff > 0)
        j = diff.masked_fill(~below, -big).argmax(1)  # largest y_j < y_i, first on ties
        k = diff.masked_fill(~above, big).argmin(1)
        has_mix = below.any(1) & above.any(1)
        yj, yk = y[j], y[k]
        mix_lam = ((yk - y) / (yk - yj).masked_fill(~has_mix, 1.0))[:, None]
        hp = F.normalize(mix_lam * z[j] + (1 - mix_lam) * z[k], dim=1)
        s_pos = (z * hp).sum(1)  # (b,)

        logits = torch.cat([sim, s_neg, s_pos[:, None]], dim=1) / t  # (b, 2b + 1)
        valid = torch.cat([~eye, distinct, has_mix[:, None]], dim=1)
        targets = torch.cat([same, torch.zeros_like(distinct), has_mix[:, None]], dim=1)
        masked = logits.masked_fill(~valid, lowest)
        log_prob = masked - torch.logsumexp(masked, dim=1, keepdim=True)
        n_pos = targets.sum(1)
        rows = n_pos > 0
        if not bool(rows.any()):
            return zero_loss(emb)
        per_row = -(log_prob.masked_fill(~targets, 0.0)).sum(1)
        return (per_row[rows] / n_pos[rows]).mean()
