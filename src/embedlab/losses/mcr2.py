"""Maximal Coding Rate Reduction (MCR²): expand the whole, compress each class."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from embedlab._validation import check_bool, check_positive_float
from embedlab.losses._base import MetricLoss, check_label_batch, zero_loss
from embedlab.losses._registry import register_loss

__all__ = ["MCR2Loss", "coding_rate", "membership_coding_rate"]


def _logdet_spd(mats: torch.Tensor) -> torch.Tensor:
    """``log det`` of symmetric positive definite ``(..., d, d)`` matrices (Cholesky)."""
    chol = torch.linalg.cholesky(mats)
    return 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)


def membership_coding_rate(z: torch.Tensor, weights: torch.Tensor, eps: float) -> torch.Tensor:
    """``R_c(Z, Π) = Σ_j tr(Π_j) / (2n) · log det(I + d / (tr(Π_j) ε²) · Zᵀ Diag(Π_j) Z)``.

    The compression term of MCR² for a (soft) membership: ``weights[j]`` are the
    non-negative weights ``Π_j`` of the samples in group ``j``. One-hot rows give the
    class-conditional rate of Yu et al.; the columns of a doubly stochastic matrix
    (each summing to 1) give the rate of MLC (Ding et al.). Groups with zero weight add 0.

    Args:
        z: ``(n, d)`` features.
        weights: ``(k, n)`` memberships ``Π_j``, non-negative.
        eps: ε, the allowed distortion (``> 0``).

    Returns:
        A scalar tensor (nats).
    """
    n, d = z.shape
    traces = weights.sum(dim=1)  # (k,)
    keep = traces > 0
    weights, traces = weights[keep], traces[keep]
    outer = (z[:, :, None] * z[:, None, :]).reshape(n, d * d)  # (n, d*d): z_i z_iᵀ
    cov = (weights @ outer).reshape(-1, d, d)  # (k, d, d): Zᵀ Diag(Π_j) Z
    scale = d / (traces * eps**2)
    eye = torch.eye(d, dtype=z.dtype, device=z.device)
    logdets = _logdet_spd(eye + scale[:, None, None] * cov)
    return (traces * logdets).sum() / (2 * n)


def coding_rate(z: torch.Tensor, eps: float) -> torch.Tensor:
    """``R(Z) = ½ log det(I + d / (n ε²) · Zᵀ Z)`` of ``z (n, d)``: the bits (nats) to
    code the features up to distortion ε (Yu et al., 2020, eq. 5)."""
    return membership_coding_rate(z, torch.ones(1, z.shape[0], dtype=z.dtype, device=z.device), eps)


@register_loss("mcr2")
class MCR2Loss(MetricLoss):
    """Negative coding rate reduction ``R_c(Z, Π) − R(Z)`` (minimise it to maximise ΔR).

    ``R(Z) = ½ log det(I + d/(n ε²) ZᵀZ)`` is the rate of the whole batch and
    ``R_c(Z, Π) = Σ_j n_j/(2n) log det(I + d/(n_j ε²) Z_jᵀ Z_j)`` the rate of each
    class coded apart. Maximising ``ΔR = R − R_c`` spreads the classes over
    orthogonal subspaces, each compressed to a low dimension. The features are
    L2-normalised first (``normalize=True``, as the paper's networks do: the rate
    grows without bound with the scale otherwise).

    Yu, Chan, You, Song, Ma, "Learning Diverse and Discriminative Representations via
    the Principle of Maximal Coding Rate Reduction", NeurIPS 2020. ``eps`` is the ε of
    the paper (squared in the formula); the reference code's ``eps`` argument is ε².

    Args:
        eps: ε, ``> 0``.
        normalize: L2-normalise each embedding before the rates are computed.

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,)) -> ()``.

    Example:
        >>> import torch
        >>> loss_fn = MCR2Loss(eps=0.5)
        >>> float(loss_fn(torch.eye(4), torch.tensor([0, 0, 1, 1]))) < 0
        True
    """

    def __init__(self, *, eps: float = 0.5, normalize: bool = True) -> None:
        super().__init__()
        self.eps = check_positive_float("eps", eps)
        self.normalize = check_bool("normalize", normalize)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb, lab, ok = check_label_batch(embeddings, labels)
        if not ok:
            return zero_loss(emb)
        z = F.normalize(emb, dim=1) if self.normalize else emb
        classes = torch.unique(lab)
        onehot = (lab[None, :] == classes[:, None]).to(z.dtype)  # (k, n)
        if classes.numel() == 1:  # R_c = R exactly
            return zero_loss(emb)
        return membership_coding_rate(z, onehot, self.eps) - coding_rate(z, self.eps)
