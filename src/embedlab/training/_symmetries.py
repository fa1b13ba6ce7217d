"""Symmetry types acting on inputs and outputs, for the soft-equivariance regulariser.

A :class:`Symmetry` is a one-parameter (or few-parameter) family of transformations: it
samples group elements ``g`` and acts with them on a batch of inputs (``rho_in(g) x``) and
of outputs (``rho_out(g) y``; identity when the outputs should be invariant). The ready-made
families act on 2-D point sets ``(batch, n_points, 2)``: rotation about the origin,
translation, and isotropic scaling.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from embedlab._validation import check_positive_float

__all__ = ["Symmetry", "rotation_2d", "scaling_2d", "translation_2d"]

Action = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Symmetry:
    """A symmetry type: how to sample group elements and act with them.

    Attributes:
        name: a short name (``"rotation"``).
        sample: ``(batch, generator) -> g`` group elements ``(batch, n_params)``.
        act_input: ``(x, g) -> rho_in(g) x`` on inputs ``(batch, ...)``.
        act_output: ``(y, g) -> rho_out(g) y`` on outputs; ``None``: invariance (identity).
    """

    name: str
    sample: Callable[[int, torch.Generator | None], torch.Tensor]
    act_input: Action
    act_output: Action | None = None


def _uniform(n: int, k: int, half_width: float, gen: torch.Generator | None) -> torch.Tensor:
    return (torch.rand(n, k, generator=gen) * 2.0 - 1.0) * half_width


def _rotate(points: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Rotate ``(batch, n, 2)`` points (or ``(batch, 2)`` vectors) by angles ``g (batch, 1)``."""
    c, s = torch.cos(g[:, 0]), torch.sin(g[:, 0])
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # (b, 2, 2)
    if points.dim() == 2:
        return torch.einsum("bij,bj->bi", rot, points)
    return torch.einsum("bij,bnj->bni", rot, points)


def rotation_2d(max_angle: float = math.pi, *, equivariant_output: bool = False) -> Symmetry:
    """Rotations about the origin by an angle in ``[-max_angle, max_angle]``.

    With ``equivariant_output`` the outputs (2-D vectors ``(batch, 2)`` or point sets) are
    rotated too (equivariance); otherwise they must not change (invariance).
    """
    check_positive_float("max_angle", max_angle)
    return Symmetry(
        "rotation",
        lambda n, gen: _uniform(n, 1, max_angle, gen),
        _rotate,
        _rotate if equivariant_output else None,
    )


def translation_2d(max_shift: float = 1.0) -> Symmetry:
    """Translations of every point by the same vector in ``[-max_shift, max_shift]^2``."""
    check_positive_float("max_shift", max_shift)
    return Symmetry(
        "translation",
        lambda n, gen: _uniform(n, 2, max_shift, gen),
        lambda x, g: x + g[:, None, :],
    )


def scaling_2d(max_log_scale: float = 0.5) -> Symmetry:
    """Isotropic scaling by ``exp(t)``, ``t`` in ``[-max_log_scale, max_log_scale]``."""
    check_positive_float("max_log_scale", max_log_scale)
    return Symmetry(
        "scaling",
        lambda n, gen: _uniform(n, 1, max_log_scale, gen),
        lambda x, g: x * torch.exp(g)[:, :, None],
    )
