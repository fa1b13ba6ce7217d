"""Soft equivariance: the regulariser vanishes on exactly equivariant maps, matches a naive
loop, and the tuned levels rank the symmetry types of a generated task."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from embedlab.training._symmetry_task import (
    InvariantFeatures,
    mixed_symmetry_target,
    mixed_symmetry_task,
)
from embedlab.training.soft_equivariance import (
    SoftEquivarianceRegularizer,
    Symmetry,
    equivariance_error,
    fit_soft_equivariant,
    rotation_2d,
    scaling_2d,
    translation_2d,
)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


class PairwiseSum(nn.Module):
    """Sum of pairwise distances: exactly rotation and translation invariant."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cdist(x, x).sum(dim=(1, 2))[:, None]


class ScaledCentroid(nn.Module):
    """``3 * centroid``: exactly rotation equivariant (outputs rotate with the inputs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 3.0 * x.mean(dim=1)


def test_zero_on_exactly_invariant_and_equivariant_maps() -> None:
    x = torch.randn(32, 5, 2, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    f = PairwiseSum()
    assert float(equivariance_error(f, x, rotation_2d(), generator=gen)) < 1e-20
    assert float(equivariance_error(f, x, translation_2d(), generator=gen)) < 1e-20
    assert float(equivariance_error(f, x, scaling_2d(), generator=gen)) > 1.0
    g = ScaledCentroid()
    eq = rotation_2d(equivariant_output=True)
    assert float(equivariance_error(g, x, eq, n_samples=3, generator=gen)) < 1e-20
    assert float(equivariance_error(g, x, rotation_2d(), generator=gen)) > 0.1  # not invariant
    reg = SoftEquivarianceRegularizer([rotation_2d(), translation_2d()])
    assert float(reg(f, x)) < 1e-20


def test_task_symmetries_hold_as_generated() -> None:
    x = torch.randn(64, 4, 2, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)

    class Target(nn.Module):
        def forward(self, a: torch.Tensor) -> torch.Tensor:
            return mixed_symmetry_target(a, 0.05)

    t = Target()
    rot = float(equivariance_error(t, x, rotation_2d(), generator=gen))
    trans = float(equivariance_error(t, x, translation_2d(0.5), generator=gen))
    scale = float(equivariance_error(t, x, scaling_2d(0.3), generator=gen))
    assert rot < 1e-20 and 0 < trans < scale  # measured trans 4e-4, scale 1.6e-2
    xs, ys = mixed_symmetry_task(10, seed=3)
    assert xs.shape == (10, 4, 2) and ys.shape == (10, 1)
    assert torch.equal(mixed_symmetry_task(10, seed=3)[0], xs)
    for kind in ("rotation", "euclidean"):
        feats = InvariantFeatures(4, kind)
        err = equivariance_error(feats, x.float(), rotation_2d(), generator=gen)
        assert float(err) < 1e-9


def test_error_against_a_naive_loop() -> None:
    x = torch.randn(6, 3, 2, dtype=torch.float64)
    f = nn.Sequential(nn.Flatten(), nn.Linear(6, 2)).double()
    sym = scaling_2d(0.4)
    got = equivariance_error(f, x, sym, n_samples=2, generator=torch.Generator().manual_seed(5))
    g = sym.sample(12, torch.Generator().manual_seed(5)).double()
    total = 0.0
    for k in range(12):
        xi = x[k % 6 : k % 6 + 1]
        moved = xi * math.exp(float(g[k, 0]))
        with torch.no_grad():
            total += float(((f(moved) - f(xi)) ** 2).sum())
    assert float(got.detach()) == pytest.approx(total / 12, rel=1e-10)


def test_levels_rank_the_symmetries() -> None:
    """Exact rotation > approximate translation > absent scaling (short run: 200 steps;
    measured 4.2 > 1.3 > 0.24, and the same order for seeds 1 and 2)."""
    xtr, ytr = mixed_symmetry_task(128, alpha=0.05, seed=1)
    xva, yva = mixed_symmetry_task(128, alpha=0.05, seed=2)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 64), nn.SiLU(), nn.Linear(64, 1))
    reg = SoftEquivarianceRegularizer([rotation_2d(), translation_2d(0.5), scaling_2d(0.3)])
    res = fit_soft_equivariant(
        model, xtr, ytr, xva, yva, reg, steps=200, level_lr=0.1, batch_size=32
    )
    lv = res.levels
    assert lv["rotation"] > lv["translation"] > lv["scaling"], lv
    assert lv["rotation"] > 1.0 > lv["scaling"]
    assert len(res.level_history["rotation"]) == 3  # steps 0, 100, 199


def test_fixed_levels_do_not_move_and_bad_input() -> None:
    xtr, ytr = mixed_symmetry_task(16, seed=1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 1))
    reg = SoftEquivarianceRegularizer([rotation_2d()], init_level=2.0)
    res = fit_soft_equivariant(model, xtr, ytr, xtr, ytr, reg, steps=5, tune_levels=False)
    assert res.levels == {"rotation": pytest.approx(2.0)}
    with pytest.raises(ValueError, match="at least one Symmetry"):
        SoftEquivarianceRegularizer([])
    with pytest.raises(ValueError, match="distinct names"):
        SoftEquivarianceRegularizer([rotation_2d(), rotation_2d()])
    with pytest.raises(ValueError, match=r"init_level must be in \[min_level, max_level\]"):
        SoftEquivarianceRegularizer([rotation_2d()], init_level=1e6)
    with pytest.raises(ValueError, match="max_angle must be > 0"):
        rotation_2d(0.0)
    with pytest.raises(ValueError, match="same, non-zero number of rows, got 16 and 3"):
        fit_soft_equivariant(model, xtr, ytr[:3], xtr, ytr, reg, steps=1)
    with pytest.raises(ValueError, match="n_points must be >= 3"):
        mixed_symmetry_task(4, n_points=2)
    custom = Symmetry("flip", lambda n, g: torch.zeros(n, 1), lambda a, g: -a)
    assert float(equivariance_error(PairwiseSum(), torch.randn(4, 3, 2), custom)) < 1e-9
