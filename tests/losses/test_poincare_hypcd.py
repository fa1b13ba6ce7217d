"""Poincaré ball maps and distance vs a naive float64 formula; the HypCD loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from embedlab.losses import HypCDLoss, PoincareDistance, SupConLoss, expmap0, make_loss
from embedlab.losses.poincare import BALL_EPS, project_to_ball


def naive_mobius_distance(x: np.ndarray, y: np.ndarray, c: float) -> float:
    """``(2/sqrt c) artanh(sqrt c |(-x) (+) y|)`` with the Möbius addition, float64."""
    a, b = -x.astype(np.float64), y.astype(np.float64)
    ab, aa, bb = float(a @ b), float(a @ a), float(b @ b)
    num = (1 + 2 * c * ab + c * bb) * a + (1 - c * aa) * b
    m = num / (1 + 2 * c * ab + c * c * aa * bb)
    return 2 / math.sqrt(c) * math.atanh(math.sqrt(c) * float(np.linalg.norm(m)))


def naive_expmap0(v: np.ndarray, c: float, clip_r: float | None) -> np.ndarray:
    v = v.astype(np.float64)
    norm = float(np.linalg.norm(v))
    if clip_r is not None and norm > clip_r:
        v, norm = v * clip_r / norm, clip_r
    return v if norm == 0 else math.tanh(math.sqrt(c) * norm) * v / (math.sqrt(c) * norm)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("c", [0.1, 1.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_distance_matches_naive_mobius_formula(seed: int, c: float, dtype: torch.dtype) -> None:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(7, 5)) * 2.0
    w = rng.normal(size=(6, 5)) * 0.3
    dist = PoincareDistance(curvature=c, clip_r=2.3)
    got = dist.pairwise(torch.tensor(v, dtype=dtype), torch.tensor(w, dtype=dtype)).double()
    xs = [naive_expmap0(r, c, 2.3) for r in v]
    ys = [naive_expmap0(r, c, 2.3) for r in w]
    ref = np.array([[naive_mobius_distance(a, b, c) for b in ys] for a in xs])
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    np.testing.assert_allclose(got.numpy(), ref, rtol=tol, atol=tol)
    pair = dist.pair(torch.tensor(v[:6], dtype=dtype), torch.tensor(w, dtype=dtype)).double()
    np.testing.assert_allclose(pair.numpy(), np.diag(ref[:6]), rtol=tol, atol=tol)


def test_expmap0_matches_naive_and_stays_in_ball() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(20, 4)) * np.logspace(-3, 6, 20)[:, None]
    for clip in (None, 2.3):
        got = expmap0(torch.tensor(v), 0.5, clip_r=clip).numpy()
        ref = np.stack([naive_expmap0(r, 0.5, clip) for r in v])
        radius = (1 - BALL_EPS[torch.float64]) / math.sqrt(0.5)
        ref = ref * np.minimum(1.0, radius / np.linalg.norm(ref, axis=1))[:, None]
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
        assert (np.linalg.norm(got, axis=1) < 1 / math.sqrt(0.5)).all()


def test_points_outside_the_ball_are_clipped_not_nan() -> None:
    c = 1.0
    x = torch.tensor([[5.0, 0.0], [1.0, 0.0], [0.2, 0.1], [0.0, 0.0]], requires_grad=True)
    dist = PoincareDistance(curvature=c, map_input=False)
    d = dist.pairwise(x)
    assert torch.isfinite(d).all()
    d.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    inside = project_to_ball(x.detach(), c)
    eps = BALL_EPS[torch.float32]
    np.testing.assert_allclose(inside.norm(dim=1)[:2].numpy(), [1 - eps, 1 - eps], rtol=1e-6)
    np.testing.assert_allclose(inside[2:].numpy(), x.detach()[2:].numpy())  # unchanged
    # both clipped onto (1 - eps) e_x; 1 ulp there is ~0.006 of hyperbolic distance
    assert float(d[0, 1].detach()) == pytest.approx(0.0, abs=0.05)  # measured 0.006


def test_zero_distance_has_zero_gradient() -> None:
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    d = PoincareDistance().pairwise(x)
    assert torch.allclose(torch.diagonal(d), torch.zeros(5, dtype=torch.float64), atol=1e-6)
    torch.diagonal(d).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("bad", [0, -1.0, float("inf")])
def test_curvature_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="curvature must be"):
        PoincareDistance(curvature=bad)
    with pytest.raises(ValueError, match="curvature must be"):
        expmap0(torch.ones(1, 2), bad)
    with pytest.raises(ValueError, match="curvature must be"):
        make_loss(f"hypcd(curvature={bad})")


def test_hypcd_alpha_zero_is_cosine_supcon_and_one_is_hyperbolic_supcon() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(12, 6, generator=gen, dtype=torch.float64)
    y = torch.arange(12) % 3
    cos = SupConLoss(temperature=0.07)(x, y)
    assert float(HypCDLoss(alpha=0.0)(x, y)) == pytest.approx(float(cos), rel=1e-12)
    hyp = SupConLoss(temperature=0.07, distance=PoincareDistance(curvature=0.1))(x, y)
    assert float(HypCDLoss(alpha=1.0)(x, y)) == pytest.approx(float(hyp), rel=1e-12)
    half = HypCDLoss(alpha=0.5)
    assert float(half(x, y)) == pytest.approx(0.5 * float(cos) + 0.5 * float(hyp), rel=1e-12)
    half.ramp = 0.0  # start of the distance-weight ramp: angle only
    assert float(half(x, y)) == pytest.approx(float(cos), rel=1e-12)


def test_hypcd_spec_and_bad_alpha() -> None:
    loss = make_loss("hypcd(alpha=0.3, curvature=0.5, clip_r=1.0)")
    assert isinstance(loss, HypCDLoss)
    assert (loss.alpha, loss.curvature, loss.clip_r) == (0.3, 0.5, 1.0)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        HypCDLoss(alpha=1.5)
