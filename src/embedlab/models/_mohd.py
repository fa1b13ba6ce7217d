"""MoHD: a mixture of hidden dimensions (shared + routed sub-dimensions, activation scaling).

Paper: Chen et al., "Mixture of Hidden-Dimensions Transformer", ICML 2025
(arXiv:2412.05644). Trained transformers use only part of each token's hidden dimensions:
some sub-dimensions are active for most tokens (shared), others only for some (specialised).
MoHD keeps the shared sub-dimensions always on and lets a router switch on, per token, a
few groups of specialised sub-dimensions; the kept activations are rescaled so the
"activation flow" keeps its magnitude.

Our reading, per token ``h (width,)`` split into ``n_groups`` equal groups::

    n_active = max(1, round(ratio * n_groups))      # groups kept per token
    n_shared = n_active // 2                        # groups 0 .. n_shared-1: always kept
    k        = n_active - n_shared                  # routed groups per token
    g = softmax(W_r h)                              # (n_groups - n_shared,) router gates
    keep the top-k routed groups, weighted w_i = k * g_i / sum_topk g  (mean weight 1)
    out = (n_groups / n_active) * [h_shared, w_i h_i for the kept groups, 0 elsewhere]

The factor ``n_groups / n_active`` is the activation scaling (the kept activations carry
the mass of the whole width, as in inverted dropout); the gate weights give the router its
gradient. ``ratio = 1`` keeps every group and is the dense layer (identity). Not
implemented: the paper's group fusion and any load-balancing loss; the masked dimensions
are computed densely and zeroed (no CPU speed-up, the point here is the model).

Measured on Frappe (``embedlab bench ctr --model "autoint(mohd=0.5)" --methods full``, dim
16, 5 epochs, not converged): test AUC 0.9294 / 0.9283 (seeds 0 / 1) against dense
``autoint`` 0.9288 / 0.9283: half the hidden dimensions per token, the same AUC.
"""

from __future__ import annotations

import torch
from torch import nn

from embedlab._validation import check_int, check_positive_float

__all__ = ["MoHD", "check_mohd", "check_mohd_ratio"]


def check_mohd_ratio(value: object) -> float:
    """The active ratio of hidden dimensions, a number in ``(0, 1]``."""
    v = check_positive_float("mohd", value)
    if v > 1.0:
        raise ValueError(f"mohd must be in (0, 1] (the share of active hidden dims), got {value}")
    return v


def check_mohd(value: object) -> float | None:
    """``mohd`` is ``None`` (dense) or the active ratio of hidden dimensions in ``(0, 1]``."""
    return None if value is None else check_mohd_ratio(value)


class MoHD(nn.Module):
    """Shared + routed hidden sub-dimensions of ``(..., width)`` activations.

    Args:
        width: hidden width ``H``.
        ratio: share of the hidden dimensions kept per token, in ``(0, 1]``.
        n_groups: groups the width is split into (at most ``width``; the largest divisor of
            ``width`` not above it is used).

    Shapes:
        ``forward(h)``: ``(batch, n_tokens, width)`` -> same shape.

    Example:
        >>> layer = MoHD(16, 0.5, n_groups=8)
        >>> (layer.n_shared, layer.k, layer.active_ratio)
        (2, 2, 0.5)
        >>> layer(torch.randn(3, 5, 16)).shape
        torch.Size([3, 5, 16])
    """

    def __init__(self, width: int, ratio: float, *, n_groups: int = 8) -> None:
        super().__init__()
        self.width = check_int("width", width, min_value=1)
        self.ratio = check_mohd_ratio(ratio)
        wanted = min(check_int("mohd_groups", n_groups, min_value=1), self.width)
        self.n_groups = max(g for g in range(1, wanted + 1) if self.width % g == 0)
        self.n_active = max(1, min(self.n_groups, round(self.ratio * self.n_groups)))
        self.n_shared = self.n_active // 2
        self.k = self.n_active - self.n_shared
        self.dense = self.n_active == self.n_groups
        self.router = None if self.dense else nn.Linear(width, self.n_groups - self.n_shared)

    @property
    def active_ratio(self) -> float:
        """Share of the hidden dimensions kept per token (``n_active / n_groups``)."""
        return self.n_active / self.n_groups

    def group_weights(self, h: torch.Tensor) -> torch.Tensor:
        """Per-token weight of every group ``(..., n_groups)``: 1 shared, ``w_i`` routed, 0 off."""
        if self.router is None:
            return torch.ones(*h.shape[:-1], self.n_groups, dtype=h.dtype, device=h.device)
        gates = self.router(h).softmax(dim=-1)  # (..., n_routed)
        top, idx = gates.topk(self.k, dim=-1)
        w = self.k * top / top.sum(dim=-1, keepdim=True)
        routed = torch.zeros_like(gates).scatter(-1, idx, w)
        shared = torch.ones(*h.shape[:-1], self.n_shared, dtype=h.dtype, device=h.device)
        return torch.cat([shared, routed], dim=-1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.dense:
            return h
        weights = self.group_weights(h)  # (..., n_groups)
        size = self.width // self.n_groups
        grouped = h.reshape(*h.shape[:-1], self.n_groups, size)
        out: torch.Tensor = (grouped * weights.unsqueeze(-1)).reshape(h.shape)
        return out * (self.n_groups / self.n_active)

    def extra_repr(self) -> str:
        return (
            f"width={self.width}, groups={self.n_groups}, shared={self.n_shared}, "
            f"routed_top_k={self.k}, active_ratio={self.active_ratio:g}"
        )
