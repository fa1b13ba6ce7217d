"""Dice, the data-adaptive activation of DIN (Zhou et al., KDD 2018)."""

from __future__ import annotations

import torch
from torch import nn

from embedlab._validation import check_int, check_positive_float, check_probability

__all__ = ["Dice"]


class Dice(nn.Module):
    """``f(s) = p(s) * s + (1 - p(s)) * alpha * s`` with ``p(s) = sigmoid(BN(s))``.

    After G. Zhou et al., "Deep Interest Network for Click-Through Rate
    Prediction", KDD 2018, eq. (9): PReLU with its rectifier point moved to the
    data. ``BN`` standardises each unit without an affine part,
    ``(s - E[s]) / sqrt(Var[s] + eps)``: with the mini-batch's statistics in
    training, with their running averages in eval mode (as batch norm does).
    ``alpha`` (one per unit, initialised to 0) is learned. A training batch of a
    single row has no variance, so it is standardised with the running
    statistics too (batch norm would raise).

    Args:
        n_units: width of the last axis of the input.
        eps: added to the variance (the paper's 1e-8).
        momentum: weight of the current batch in the running statistics, in [0, 1).

    Shapes:
        ``(..., n_units)`` -> ``(..., n_units)``; statistics are taken over all
        leading axes.

    Example:
        >>> import torch
        >>> Dice(4)(torch.randn(8, 4)).shape
        torch.Size([8, 4])
    """

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, n_units: int, *, eps: float = 1e-8, momentum: float = 0.1) -> None:
        super().__init__()
        self.n_units = check_int("n_units", n_units, min_value=1)
        self.eps = check_positive_float("eps", eps)
        self.momentum = check_probability("momentum", momentum)
        self.alpha = nn.Parameter(torch.zeros(self.n_units))
        self.register_buffer("running_mean", torch.zeros(self.n_units))
        self.register_buffer("running_var", torch.ones(self.n_units))

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """``p(s)`` in (0, 1), same shape as ``x`` (updates running statistics in training)."""
        if x.shape[-1] != self.n_units:
            raise ValueError(
                f"Dice input must have {self.n_units} units on its last axis, "
                f"got shape {tuple(x.shape)}"
            )
        flat = x.reshape(-1, self.n_units)  # (rows, n_units)
        normed = nn.functional.batch_norm(
            flat,
            self.running_mean,
            self.running_var,
            training=self.training and flat.shape[0] > 1,
            momentum=self.momentum,
            eps=self.eps,
        )
        return torch.sigmoid(normed).reshape(x.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.gate(x)
        return p * x + (1.0 - p) * self.alpha * x

    def extra_repr(self) -> str:
        return f"{self.n_units}, eps={self.eps:g}, momentum={self.momentum:g}"
