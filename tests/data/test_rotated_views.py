"""mnist-rot: two rotated views per image with known angles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from embedlab.data.rotated_views import rotate_images, rotated_views


def _blobs(n: int, seed: int = 0) -> np.ndarray:
    """Smooth images whose mass lies inside the inscribed disk (nothing leaves the frame)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 1, 28, 28), np.float32)
    for i in range(n):
        r, c = rng.integers(9, 19, size=2)
        x[i, 0, r - 2 : r + 3, c - 3 : c + 2] = 1.0
    return ndimage.gaussian_filter(x, sigma=(0, 0, 1.0, 1.0))


def test_rotation_matches_scipy_counter_clockwise() -> None:
    x = _blobs(3)
    angles = np.array([0.3, -1.2, math.pi / 2])
    got = rotate_images(torch.tensor(x), torch.tensor(angles, dtype=torch.float32)).numpy()
    for i, a in enumerate(angles):
        ref = ndimage.rotate(x[i, 0], math.degrees(a), reshape=False, order=1)
        assert np.abs(got[i, 0] - ref).max() < 0.05


def test_rotating_back_recovers_the_image() -> None:
    x = _blobs(8)
    views = rotated_views(x, np.arange(8), seed=3)
    for view, angle in ((views.view1, views.angle1), (views.view2, views.angle2)):
        back = rotate_images(view, -angle).numpy()
        err = np.abs(back - x).max(axis=(1, 2, 3))
        assert (err < 0.15).all(), err  # bilinear interpolation twice
        wrong = rotate_images(view, angle).numpy()  # the wrong direction does not recover it
        assert np.abs(wrong - x).max() > 0.3


def test_relative_angle_maps_view1_to_view2() -> None:
    x = _blobs(6, seed=1)
    v = rotated_views(x, np.zeros(6), seed=0)
    rel = v.relative_angle
    assert float(rel.abs().max()) <= math.pi
    moved = rotate_images(v.view1, rel).numpy()
    assert np.abs(moved - v.view2.numpy()).max() < 0.2


def test_deterministic_under_seed_and_angle_range() -> None:
    x = _blobs(50)
    a, b = rotated_views(x, np.arange(50), seed=7), rotated_views(x, np.arange(50), seed=7)
    c = rotated_views(x, np.arange(50), seed=8)
    assert torch.equal(a.view1, b.view1) and torch.equal(a.angle2, b.angle2)
    assert not torch.equal(a.angle1, c.angle1)
    small = rotated_views(x, np.arange(50), max_angle=30.0, seed=0)
    assert float(small.angle1.abs().max()) <= math.radians(30.0) + 1e-6
    assert small.labels.dtype == torch.int64


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_angle": 0.0}, "max_angle"),
        ({"max_angle": 181.0}, "max_angle"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_parameters(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rotated_views(np.zeros((2, 1, 8, 8), np.float32), np.zeros(2), **kwargs)  # type: ignore[arg-type]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="images"):
        rotated_views(np.zeros((2, 8, 8), np.float32), np.zeros(2))
    with pytest.raises(ValueError, match="labels"):
        rotated_views(np.zeros((2, 1, 8, 8), np.float32), np.zeros(3))
    bad = np.zeros((2, 1, 8, 8), np.float32)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        rotated_views(bad, np.zeros(2))
    with pytest.raises(ValueError, match="angles"):
        rotate_images(torch.zeros(2, 1, 8, 8), torch.zeros(3))
