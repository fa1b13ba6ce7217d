"""Rotated two-view pairs with known angles (``mnist-rot``), for invariant-equivariant learning.

Each image gets two independent random rotations about its centre; the angles (radians,
counter-clockwise) are returned with the views, so a model can be told the relative
transformation ``angle2 - angle1`` (SIE) or probed for the absolute angle of a view.
Rotation is bilinear with zero fill (the MNIST background), so rotating a view back by
``-angle`` recovers the image up to interpolation and the corners that left the frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from embedlab._validation import check_float_in_range, check_int

__all__ = ["RotatedViews", "rotate_images", "rotated_views"]


def rotate_images(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate each ``(C, H, W)`` image counter-clockwise by its angle (radians) about its centre.

    Args:
        images: ``(n, C, H, W)`` floating-point images.
        angles: ``(n,)`` angles in radians.

    Returns:
        ``(n, C, H, W)`` rotated images (bilinear, zero fill outside the frame).

    Example:
        >>> x = torch.rand(2, 1, 8, 8)
        >>> torch.allclose(rotate_images(x, torch.zeros(2)), x, atol=1e-5)
        True
    """
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError(
            f"images must be a floating-point torch.Tensor, got {type(images).__name__}"
        )
    if images.dim() != 4:
        raise ValueError(f"images must have shape (n, C, H, W), got {tuple(images.shape)}")
    if not isinstance(angles, torch.Tensor) or angles.shape != (images.shape[0],):
        shape = tuple(angles.shape) if isinstance(angles, torch.Tensor) else type(angles).__name__
        raise ValueError(f"angles must be a tensor of shape ({images.shape[0]},), got {shape}")
    if not bool(torch.isfinite(angles).all()):
        raise ValueError("angles must be finite, got NaN or inf")
    a = angles.to(images.dtype)
    cos, sin = torch.cos(a), torch.sin(a)
    # affine_grid maps output coords to input coords: the inverse rotation (by -angle).
    # In normalised (x right, y down) coordinates a visual counter-clockwise turn of the
    # content by `a` samples the input at R(a) applied with y pointing down.
    theta = torch.zeros(images.shape[0], 2, 3, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass(frozen=True)
class RotatedViews:
    """Two rotated views of each image and their angles.

    Attributes:
        view1, view2: ``(n, C, H, W)`` float32 views.
        angle1, angle2: ``(n,)`` float32 angles in radians of each view.
        labels: ``(n,)`` int64 labels of the source images.
    """

    view1: torch.Tensor
    view2: torch.Tensor
    angle1: torch.Tensor
    angle2: torch.Tensor
    labels: torch.Tensor

    @property
    def relative_angle(self) -> torch.Tensor:
        """``angle2 - angle1`` wrapped into ``[-pi, pi)``: the transformation from view 1 to 2."""
        d = self.angle2 - self.angle1
        return torch.remainder(d + math.pi, 2 * math.pi) - math.pi


def rotated_views(
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    *,
    max_angle: float = 180.0,
    seed: int = 0,
) -> RotatedViews:
    """Two independent uniform random rotations in ``[-max_angle, max_angle]`` degrees per image.

    Deterministic under ``seed``.

    Args:
        images: ``(n, C, H, W)`` images (e.g. ``load_mnist(...).x``).
        labels: ``(n,)`` integer labels.
        max_angle: the largest rotation in degrees, in ``(0, 180]``.
        seed: random seed of the angles.

    Example:
        >>> v = rotated_views(np.zeros((3, 1, 28, 28), np.float32), np.arange(3), seed=1)
        >>> v.view1.shape, v.angle1.shape
        (torch.Size([3, 1, 28, 28]), torch.Size([3]))
    """
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.dim() != 4 or x.shape[0] == 0:
        raise ValueError(f"images must have shape (n, C, H, W) with n >= 1, got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("images must be finite, got NaN or inf")
    y = torch.as_tensor(np.asarray(labels)).long()
    if y.shape != (x.shape[0],):
        raise ValueError(f"labels must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    deg = check_float_in_range("max_angle", max_angle, 0.0, 180.0)
    if deg <= 0:
        raise ValueError(f"max_angle must be in (0, 180] degrees, got {max_angle}")
    rng = np.random.default_rng(check_int("seed", seed, min_value=0))
    limit = math.radians(deg)
    a1 = torch.as_tensor(rng.uniform(-limit, limit, x.shape[0]), dtype=torch.float32)
    a2 = torch.as_tensor(rng.uniform(-limit, limit, x.shape[0]), dtype=torch.float32)
    return RotatedViews(rotate_images(x, a1), rotate_images(x, a2), a1, a2, y)
