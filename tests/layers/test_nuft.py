"""NUFT against a direct O(n k) float64 sum and closed-form transforms of boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from embedlab.layers import NUFT, nuft_frequencies


def direct_points(points: np.ndarray, weights: np.ndarray, res: int, extent: float) -> np.ndarray:
    """sum_p w_p exp(-2 pi i k . x_p / extent), one frequency and one point at a time."""
    k = np.fft.fftfreq(res, 1.0 / res)
    out = np.zeros((points.shape[0], res, res), dtype=complex)
    for b in range(points.shape[0]):
        for i in range(res):
            for j in range(res):
                for p in range(points.shape[1]):
                    phase = 2 * math.pi * (k[i] * points[b, p, 0] + k[j] * points[b, p, 1]) / extent
                    out[b, i, j] += weights[b, p] * complex(math.cos(phase), -math.sin(phase))
    return out


def box_1d(omega: float, a: float, b: float) -> complex:
    """int_a^b exp(-i omega t) dt."""
    if omega == 0:
        return b - a
    return complex((np.exp(-1j * omega * a) - np.exp(-1j * omega * b)) / (1j * omega))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("res", "extent"), [(6, 1.0), (7, 2.5)])
def test_points_match_direct_sum(seed: int, res: int, extent: float) -> None:
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-0.5, extent, size=(2, 9, 2))
    w = rng.uniform(0.1, 2.0, size=(2, 9))
    got = NUFT(res, extent=extent)(torch.tensor(pts), torch.tensor(w))
    np.testing.assert_allclose(got.numpy(), direct_points(pts, w, res, extent), atol=1e-12)


def test_points_float32_close_to_float64() -> None:
    pts = torch.rand(3, 20, 2, generator=torch.Generator().manual_seed(0))
    got = NUFT(8)(pts)
    ref = direct_points(pts.double().numpy(), np.ones((3, 20)), 8, 1.0)
    assert got.dtype == torch.complex64
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-4)


def test_square_as_two_triangles_matches_box_transform() -> None:
    x0, x1, y0, y1 = 0.1, 0.65, 0.2, 0.45
    sq = torch.tensor([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    got = NUFT(8, extent=1.3)(sq, torch.tensor([[2.0, 2.0]], dtype=torch.float64), faces)
    omega = nuft_frequencies(8, 1.3).numpy()
    ref = np.array(
        [[2.0 * box_1d(w[0], x0, x1) * box_1d(w[1], y0, y1) for w in row] for row in omega]
    )
    np.testing.assert_allclose(got[0].numpy(), ref, atol=1e-12)
    assert got[0, 0, 0].real.item() == pytest.approx(2.0 * (x1 - x0) * (y1 - y0))


def test_random_triangles_match_float64_midpoint_quadrature() -> None:
    # an independent reference: the integral over each triangle by a fine barycentric grid
    rng = np.random.default_rng(3)
    verts = rng.uniform(0, 1, size=(1, 5, 2))
    faces = np.array([[0, 1, 2], [1, 3, 4], [0, 2, 2]])  # the last one is degenerate (area 0)
    got = NUFT(4)(torch.tensor(verts), faces=torch.tensor(faces))
    omega = nuft_frequencies(4).numpy()
    m = 300
    u, v = np.meshgrid((np.arange(m) + 1 / 3) / m, (np.arange(m) + 1 / 3) / m, indexing="ij")
    lower = (u + v) < 1  # centroids of the lower sub-triangles of an m x m split
    u2, v2 = (np.arange(m) + 2 / 3) / m, (np.arange(m) + 2 / 3) / m
    uu2, vv2 = np.meshgrid(u2, v2, indexing="ij")
    upper = (uu2 + vv2) < 1
    bary = np.concatenate(
        [np.stack([u[lower], v[lower]], 1), np.stack([uu2[upper], vv2[upper]], 1)]
    )
    ref = np.zeros((4, 4), dtype=complex)
    for f in faces:
        a, b, c = verts[0, f]
        area = 0.5 * abs((b - a)[0] * (c - a)[1] - (b - a)[1] * (c - a)[0])
        pts = a + bary[:, :1] * (b - a) + bary[:, 1:] * (c - a)
        w = omega.reshape(-1, 2)
        phase = pts[:, :1] * w[:, 0] + pts[:, 1:] * w[:, 1]  # no BLAS: it contends with torch
        ref += area * np.exp(-1j * phase).mean(0).reshape(4, 4)
    np.testing.assert_allclose(got[0].numpy(), ref, atol=2e-5)  # quadrature error ~1e-6


def test_segment_matches_line_integral() -> None:
    pts = torch.tensor([[[0.2, 0.3], [0.7, 0.3], [0.5, 0.5]]], dtype=torch.float64)
    got = NUFT(6)(pts, faces=torch.tensor([[0, 1]]))
    omega = nuft_frequencies(6).numpy()
    ref = np.array([[box_1d(w[0], 0.2, 0.7) * np.exp(-1j * w[1] * 0.3) for w in r] for r in omega])
    np.testing.assert_allclose(got[0].numpy(), ref, atol=1e-12)


def test_raster_puts_an_on_grid_point_on_its_pixel() -> None:
    pts = torch.tensor([[[3 / 16, 5 / 16], [0.5, 0.5], [0.25, 0.75]]], dtype=torch.float64)
    img = NUFT(16, output="raster")(pts, torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64))
    expected = torch.zeros(16, 16, dtype=torch.float64)
    expected[3, 5], expected[8, 8], expected[4, 12] = 1.0, 2.0, 3.0
    torch.testing.assert_close(img[0], expected, atol=1e-12, rtol=0)
    blurred = NUFT(16, output="raster", sigma=1.0)(pts)
    assert blurred.sum().item() == pytest.approx(3.0)  # the filter keeps the DC term
    assert blurred[0, 8, 8].item() < 0.5


def test_gradients_wrt_points_and_weights() -> None:
    pts = torch.rand(1, 5, 2, dtype=torch.float64, requires_grad=True)
    w = torch.rand(1, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, w: torch.view_as_real(NUFT(4)(p, w)), (pts, w))
    faces = torch.tensor([[0, 1, 2], [2, 3, 4]])
    tri = torch.autograd.gradcheck(lambda p: NUFT(4, output="raster")(p, faces=faces), (pts,))
    assert tri
    # at coincident nodes (omega = 0, axis-aligned edges) the gradient stays finite
    sq = torch.tensor([[[0.0, 0.0], [0.5, 0.0], [0.5, 0.5]]], requires_grad=True)
    NUFT(4)(sq, faces=torch.tensor([[0, 1, 2]])).abs().sum().backward()
    assert sq.grad is not None and torch.isfinite(sq.grad).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"points": torch.tensor([[[0.1, float("nan")], [0, 0], [1, 1]]])},
            "points must be finite",
        ),
        ({"points": torch.rand(2, 2, 2)}, "points must hold at least 3 points"),
        ({"points": torch.rand(2, 5)}, r"points must have shape \(batch, n_points, 2\)"),
        ({"points": torch.rand(2, 5, 3)}, r"points must have shape"),
        ({"points": torch.rand(2, 5, 2), "weights": torch.rand(2, 4)}, "weights must have shape"),
        (
            {"points": torch.rand(1, 4, 2), "weights": torch.tensor([[1.0, float("inf"), 1, 1]])},
            "weights must be finite",
        ),
        ({"points": torch.rand(1, 4, 2), "faces": torch.tensor([[0, 1, 4]])}, "faces must index"),
        ({"points": torch.rand(1, 4, 2), "faces": torch.tensor([[0, 1, 2, 3]])}, "faces must have"),
    ],
)
def test_bad_input_names_the_parameter(kwargs: dict[str, torch.Tensor], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        NUFT(4)(**kwargs)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="res must be >= 2"):
        NUFT(1)
    with pytest.raises(ValueError, match="output must be one of raster, spectral"):
        NUFT(4, output="image")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        NUFT(4, sigma=-1.0)
    with pytest.raises(TypeError, match="points must be a floating-point tensor"):
        NUFT(4)(torch.zeros(1, 3, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="faces must hold integer"):
        NUFT(4)(torch.rand(1, 3, 2), faces=torch.zeros(1, 3))
