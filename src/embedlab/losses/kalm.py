"""KaLM-style InfoNCE: focal reweighting and online hard-negative mixing."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from embedlab._validation import check_fraction, check_int, check_positive_float
from embedlab.losses._base import MetricLoss, check_label_batch, label_masks, zero_loss
from embedlab.losses._registry import register_loss

__all__ = ["KaLMLoss"]


@register_loss("kalm")
class KaLMLoss(MetricLoss):
    """InfoNCE over in-batch hard negatives, focal-weighted, with synthetic mixed negatives.

    For every positive pair ``(i, p)`` (same label) on normalised embeddings with
    logits ``s / T``: the candidates are ``p``, every negative ``n`` of ``i``
    and ``n_mix`` synthetic negatives
    ``normalize(beta h_r + (1 - beta) h_{r+1})`` mixed from the anchor's
    ``r``-th and ``(r+1)``-th hardest (most similar) negatives, ``r = 0..n_mix-1``
    (MoCHi-style; the synthetic negatives are detached). With ``q`` the
    softmax probability of the positive, the pair's loss is
    ``(1 - q) ** gamma * -log q`` (focal reweighting of hard samples;
    ``gamma = 0`` is plain InfoNCE), averaged over positive pairs.

    Hu et al., "KaLM-Embedding-V2: Superior Training Techniques and Data
    Inspire A Versatile Embedding Model", 2025; Kalantidis et al., "Hard
    Negative Mixing for Contrastive Learning" (MoCHi), NeurIPS 2020.

    Args:
        temperature: T, ``> 0``.
        gamma: focal exponent, ``>= 0``.
        n_mix: synthetic negatives per anchor, ``>= 0``.
        beta: mixing weight of the harder negative, in (0, 1).

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,)) -> ()``.

    Example:
        >>> import torch
        >>> float(KaLMLoss()(torch.randn(16, 8), torch.arange(16) % 4)) > 0
        True
    """

    needs_positives = True
    needs_negatives = True

    def __init__(
        self,
        *,
        temperature: float = 0.05,
        gamma: float = 1.0,
        n_mix: int = 4,
        beta: float = 0.5,
    ) -> None:
        super().__init__()
        self.temperature = check_positive_float("temperature", temperature)
        self.gamma = check_positive_float("gamma", gamma, strict=False)
        self.n_mix = check_int("n_mix", n_mix, min_value=0)
        self.beta = check_fraction("beta", beta)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb, lab, ok = check_label_batch(
            embeddings, labels, needs_positives=True, needs_negatives=True
        )
        if not ok:
            return zero_loss(emb)
        z = F.normalize(emb, dim=1)
        t = self.temperature
        logits = z @ z.T / t
        pos, neg = label_masks(lab)
        lowest = torch.finfo(logits.dtype).min
        neg_logits = logits.masked_fill(~neg, lowest)
        neg_lse = torch.logsumexp(neg_logits, dim=1)  # (batch,)
        n_neg = int(neg.sum(1).min())
        n_mix = min(self.n_mix, n_neg - 1)
        if n_mix > 0:
            with torch.no_grad():
                hard = neg_logits.topk(n_mix + 1, dim=1).indices  # (batch, n_mix + 1)
                h = z.detach()[hard]  # (batch, n_mix + 1, dim)
                mixed = F.normalize(self.beta * h[:, :-1] + (1 - self.beta) * h[:, 1:], dim=-1)
            mix_logits = torch.einsum("bd,bmd->bm", z, mixed) / t  # (batch, n_mix)
            neg_lse = torch.logaddexp(neg_lse, torch.logsumexp(mix_logits, dim=1))
        a, p = torch.nonzero(pos, as_tuple=True)
        s = logits[a, p]
        nll = torch.logaddexp(s, neg_lse[a]) - s  # -log q
        weight = (1 - torch.exp(-nll)) ** self.gamma
        return (weight * nll).mean()
