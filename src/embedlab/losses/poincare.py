"""The Poincaré ball: clipped exponential map at the origin and the hyperbolic distance.

The ball of curvature ``-c`` is ``{x : c |x|^2 < 1}``. Euclidean features enter it through
:func:`expmap0`, after *feature clipping* (Guo et al., "Clipped Hyperbolic Classifiers Are
Super-Hyperbolic Classifiers", CVPR 2022; used by HypCD with ``clip_r = 2.3``):
``v <- min(1, r / |v|) v``. Every map ends with :func:`project_to_ball`, which pulls points
back to radius ``(1 - eps) / sqrt(c)``, so no point ever reaches the boundary (where the
distance is infinite) and nothing is NaN.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from embedlab._validation import check_positive_float
from embedlab.losses.distances import Distance

__all__ = [
    "BALL_EPS",
    "PoincareDistance",
    "check_curvature",
    "clip_features",
    "expmap0",
    "project_to_ball",
]

#: points are kept at radius <= (1 - eps) / sqrt(c): 1e-5 for float32 (1 - 1e-5 is exact
#: enough there; artanh(1 - 1e-5) ~ 6.1), 1e-12 for float64
BALL_EPS: dict[torch.dtype, float] = {torch.float32: 1e-5, torch.float64: 1e-12}
_TINY = 1e-15
#: pairwise distances use exact differences up to this many (n * m * dim) elements
_DIRECT_MAX = 1 << 22


def check_curvature(value: Any) -> float:
    """``c > 0`` (the ball has curvature ``-c``); a clear ValueError otherwise."""
    return check_positive_float("curvature", value)


def _eps(x: torch.Tensor) -> float:
    return BALL_EPS.get(x.dtype, 1e-5)


def clip_features(v: torch.Tensor, clip_r: float | None) -> torch.Tensor:
    """Feature clipping ``v * min(1, clip_r / |v|)`` per row; ``None`` leaves ``v`` as is."""
    if clip_r is None:
        return v
    norm = torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(_TINY)
    return v * torch.clamp(clip_r / norm, max=1.0)


def project_to_ball(x: torch.Tensor, curvature: float) -> torch.Tensor:
    """Rows of ``x (n, dim)`` pulled inside radius ``(1 - eps) / sqrt(c)`` (``eps`` from
    :data:`BALL_EPS`); rows already inside are unchanged. Points outside the ball are
    *clipped* to that radius, never NaN."""
    c = check_curvature(curvature)
    max_norm = (1.0 - _eps(x)) / math.sqrt(c)
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(_TINY)
    return x * torch.clamp(max_norm / norm, max=1.0)


def expmap0(v: torch.Tensor, curvature: float, *, clip_r: float | None = None) -> torch.Tensor:
    """Exponential map at the origin: ``tanh(sqrt(c) |v|) v / (sqrt(c) |v|)``, in the ball.

    Args:
        v: ``(n, dim)`` tangent (Euclidean) vectors.
        curvature: ``c > 0``.
        clip_r: clip ``|v|`` to this radius first (:func:`clip_features`); ``None``: no clip.

    Returns:
        ``(n, dim)`` points with ``|x| <= (1 - eps) / sqrt(c)``.

    Example:
        >>> import torch
        >>> x = expmap0(torch.tensor([[1e6, 0.0]]), 1.0)
        >>> bool(x.norm() < 1.0)
        True
    """
    c = check_curvature(curvature)
    v = clip_features(v, clip_r)
    sqrt_c = math.sqrt(c)
    norm = torch.linalg.vector_norm(v, dim=-1, keepdim=True).clamp_min(_TINY)
    return project_to_ball(torch.tanh(sqrt_c * norm) * v / (sqrt_c * norm), c)


class PoincareDistance(Distance):
    """Geodesic distance on the Poincaré ball of curvature ``-c``; smaller is closer.

    ``d(x, y) = (1/sqrt(c)) arccosh(1 + 2c |x - y|^2 / ((1 - c|x|^2)(1 - c|y|^2)))``,
    evaluated as ``log1p(delta + sqrt(delta (delta + 2))) / sqrt(c)`` (no cancellation for
    close points; the gradient at ``x = y`` is 0, not NaN). It equals the Möbius form
    ``(2/sqrt(c)) artanh(sqrt(c) |(-x) (+) y|)``, against which it is tested.

    Args:
        curvature: ``c > 0`` (HypCD uses 0.1).
        clip_r: feature-clipping radius applied before :func:`expmap0` (HypCD 2.3); ``None``
            for no clipping.
        map_input: True (default): inputs are Euclidean features, mapped with the clipped
            :func:`expmap0`. False: inputs are already ball points; those outside the ball
            are clipped to radius ``(1 - eps) / sqrt(c)`` (:func:`project_to_ball`).

    Example:
        >>> import torch
        >>> d = PoincareDistance(curvature=1.0, map_input=False)
        >>> round(d.pair(torch.zeros(1, 2), torch.tensor([[0.5, 0.0]])).item(), 4)
        1.0986
    """

    is_inverted = False

    def __init__(
        self, *, curvature: float = 0.1, clip_r: float | None = 2.3, map_input: bool = True
    ) -> None:
        super().__init__(normalize_embeddings=False)
        self.curvature = check_curvature(curvature)
        self.clip_r = None if clip_r is None else check_positive_float("clip_r", clip_r)
        self.map_input = bool(map_input)

    def to_ball(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, dim)`` rows as points of the ball (mapped or clipped, see ``map_input``)."""
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        if self.map_input:
            return expmap0(x, self.curvature, clip_r=self.clip_r)
        return project_to_ball(x, self.curvature)

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_ball(x)

    def _from_sq(self, sq: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        c = self.curvature
        delta = 2.0 * c * sq / den
        tiny = torch.finfo(delta.dtype).tiny
        root = torch.sqrt(torch.clamp_min(delta * (delta + 2.0), tiny))
        return torch.log1p(delta + root) / math.sqrt(c)

    def _pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = self.curvature
        xx, yy = (x * x).sum(-1), (y * y).sum(-1)
        if x.shape[0] * y.shape[0] * x.shape[1] <= _DIRECT_MAX:
            diff = x[:, None, :] - y[None, :, :]  # (n, m, dim): exact for close points
            sq = (diff * diff).sum(-1)
        else:  # |x|^2 + |y|^2 - 2<x, y>: less memory, cancellation for close points
            sq = (xx[:, None] + yy[None, :] - 2.0 * (x @ y.T)).clamp_min(0.0)
        den = (1.0 - c * xx)[:, None] * (1.0 - c * yy)[None, :]
        return self._from_sq(sq, den)

    def _pair(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = self.curvature
        diff = x - y
        den = (1.0 - c * (x * x).sum(-1)) * (1.0 - c * (y * y).sum(-1))
        return self._from_sq((diff * diff).sum(-1), den)

    def __repr__(self) -> str:
        return (
            f"PoincareDistance(curvature={self.curvature:g}, clip_r={self.clip_r}, "
            f"map_input={self.map_input})"
        )
