"""SIE: hypernetwork predictor, loss, training on tiny data, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from embedlab.data.rotated_views import rotated_views
from embedlab.training.sie import (
    HyperPredictor,
    fit_sie,
    sie_embed,
    sie_loss,
    vicreg_regularizers,
)


def test_predictor_shapes_and_periodicity() -> None:
    p = HyperPredictor(5, hidden=8, seed=0)
    z = torch.randn(7, 5)
    a = torch.linspace(-3, 3, 7)
    assert p(z, a).shape == (7, 5)
    assert p.matrices(a).shape == (7, 5, 5)
    assert torch.allclose(p(z, a), p(z, a + 2 * math.pi), atol=1e-5)
    # each row is its own linear map of z: batched equals one by one
    one = torch.stack([p.matrices(a[i : i + 1])[0] @ z[i] for i in range(7)])
    assert torch.allclose(p(z, a), one, atol=1e-6)


def test_vicreg_regularizers_against_naive_reference() -> None:
    z = torch.randn(20, 4, dtype=torch.float64) * torch.tensor(
        [0.5, 2.0, 1.0, 0.1], dtype=torch.float64
    )
    var, cov = vicreg_regularizers(z)
    zn = z.numpy()
    std = np.sqrt(zn.var(axis=0, ddof=1) + 1e-4)
    c = np.cov(zn, rowvar=False)
    off = sum(c[i, j] ** 2 for i in range(4) for j in range(4) if i != j) / 4
    assert float(var) == pytest.approx(np.maximum(0, 1 - std).mean(), rel=1e-9)
    assert float(cov) == pytest.approx(off, rel=1e-9)


def test_loss_parts_zero_eq_term_when_predictor_exact() -> None:
    torch.manual_seed(0)
    p = HyperPredictor(3, seed=1)
    z1 = torch.randn(16, 7)
    a = torch.rand(16)
    z2 = z1.clone()
    z2[:, 4:] = p(z1[:, 4:], a).detach()
    _, parts = sie_loss(z1, z2, a, p, dim_inv=4)
    assert parts["inv"] == pytest.approx(0.0, abs=1e-9)
    assert parts["eq"] == pytest.approx(0.0, abs=1e-9)
    _, parts = sie_loss(z1, z2 + 1.0, a, p, dim_inv=4)
    assert parts["inv"] == pytest.approx(1.0, rel=1e-5) and parts["eq"] == pytest.approx(
        1.0, rel=1e-5
    )


class _Tiny(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


def _tiny_views() -> object:
    rng = np.random.default_rng(0)
    x = rng.random((64, 1, 8, 8)).astype(np.float32)
    return rotated_views(x, rng.integers(0, 3, 64), seed=0)


def test_loss_decreases_on_tiny_data() -> None:
    torch.set_num_threads(1)
    views = _tiny_views()
    res = fit_sie(views, dim_inv=6, dim_eq=4, epochs=10, batch_size=16, lr=1e-2, encoder=_Tiny(10))  # type: ignore[arg-type]
    first, last = res.history[0], res.history[-1]
    assert last["total"] < 0.9 * first["total"], res.history
    inv, eq = sie_embed(res, views.view1)  # type: ignore[attr-defined]
    assert inv.shape == (64, 6) and eq.shape == (64, 4)
    base = fit_sie(views, dim_inv=10, dim_eq=0, epochs=2, batch_size=32, encoder=_Tiny(10))  # type: ignore[arg-type]
    assert base.predictor is None and base.history[-1]["eq"] == 0.0


def test_bad_input() -> None:
    p = HyperPredictor(3)
    with pytest.raises(ValueError, match="z must have 3 columns"):
        p(torch.zeros(2, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="angle"):
        p(torch.zeros(2, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="dim"):
        HyperPredictor(0)
    z = torch.randn(4, 5)
    with pytest.raises(ValueError, match="dim_inv"):
        sie_loss(z, z, torch.zeros(4), None, dim_inv=6)
    with pytest.raises(ValueError, match="predictor"):
        sie_loss(z, z, torch.zeros(4), None, dim_inv=2)
    with pytest.raises(ValueError, match="same shape"):
        sie_loss(z, z[:, :4], torch.zeros(4), None, dim_inv=2)
    bad = z.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        sie_loss(bad, z, torch.zeros(4), HyperPredictor(3), dim_inv=2)
    with pytest.raises(TypeError, match="views"):
        fit_sie("nope")  # type: ignore[arg-type]
    views = _tiny_views()
    with pytest.raises(ValueError, match="dim_eq"):
        fit_sie(views, dim_eq=-1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="encoder must output"):
        fit_sie(views, dim_inv=3, dim_eq=2, encoder=_Tiny(4), epochs=1)  # type: ignore[arg-type]
