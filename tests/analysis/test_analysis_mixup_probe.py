"""Mixup geometry probe: closed forms for an affine feature map, a naive reference loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedlab.analysis import mixup_geometry, mixup_probe


def _data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xa = rng.normal(size=(30, 5)) + np.array([2.0, 0, 0, 1, 0])
    xb = rng.normal(size=(30, 5)) - np.array([0, 1.0, 0, 0, 0])
    a_map = rng.normal(size=(5, 4))
    c = rng.normal(size=4)
    return xa, xb, a_map, c


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_affine_features_mix_linearly(seed: int) -> None:
    xa, xb, a_map, c = _data(seed)
    w, bias = np.random.default_rng(seed + 9).normal(size=(3, 4)), np.array([0.1, -0.2, 0.3])
    lams = [0.0, 0.25, 0.5, 0.8, 1.0]
    g = mixup_probe(
        lambda x: x @ a_map + c, xa, xb, lams=lams, classifier=(w, bias), classes=(2, 0)
    )
    # every row is paired, and t is affine in h: mean t(lam) = lam exactly
    np.testing.assert_allclose(g.position, lams, atol=1e-12)
    assert g.linearity_gap < 1e-12
    # the margin is affine in h: lam * m(mu_A) + (1 - lam) * m(mu_B)
    mu_a, mu_b = (xa @ a_map + c).mean(0), (xb @ a_map + c).mean(0)
    m_a = mu_a @ (w[2] - w[0]) + bias[2] - bias[0]
    m_b = mu_b @ (w[2] - w[0]) + bias[2] - bias[0]
    assert g.margin is not None
    np.testing.assert_allclose(g.margin, [lm * m_a + (1 - lm) * m_b for lm in lams], atol=1e-9)
    # lam = 1 and lam = 0: the clean features' mean distance to the line
    d = mu_a - mu_b

    def dist(h: np.ndarray) -> float:  # naive float64 loop, least squares onto the line
        out = []
        for row in h:
            basis = np.stack([d, mu_b], axis=1)  # row = t * d + 1 * mu_b + residual
            coef = np.linalg.lstsq(basis[:, :1], row - mu_b, rcond=None)[0]
            out.append(np.linalg.norm(row - mu_b - coef[0] * d))
        return float(np.mean(out)) / float(np.linalg.norm(d))

    assert g.distance[-1] == pytest.approx(dist(xa @ a_map + c), rel=1e-9)
    assert g.distance[0] == pytest.approx(dist(xb @ a_map + c), rel=1e-9)


def test_middle_distance_matches_a_reference_loop() -> None:
    xa, xb, a_map, c = _data(3)
    rng = np.random.default_rng(7)
    pa, pb = xa[rng.permutation(30)[:12]], xb[rng.permutation(30)[:12]]
    g = mixup_probe(lambda x: x @ a_map + c, xa, xb, lams=[0.3], n_pairs=12, seed=7)
    mu_a, mu_b = (xa @ a_map + c).mean(0), (xb @ a_map + c).mean(0)
    d = mu_a - mu_b
    ds, ts = [], []
    for i in range(12):
        h = (0.3 * pa[i] + 0.7 * pb[i]) @ a_map + c
        t = float(np.dot(h - mu_b, d) / np.dot(d, d))
        ts.append(t)
        ds.append(np.linalg.norm(h - mu_b - t * d) / np.linalg.norm(d))
    assert g.position[0] == pytest.approx(np.mean(ts), rel=1e-9)
    assert g.position_std[0] == pytest.approx(np.std(ts), rel=1e-9)
    assert g.distance[0] == pytest.approx(np.mean(ds), rel=1e-9)
    assert g.margin is None and g.frac_a is None


def test_saturating_features_jump_at_the_boundary() -> None:
    # features that snap to one class: position is a step, not lam
    xa = np.ones((10, 1), dtype=np.float32)
    xb = np.zeros((10, 1), dtype=np.float32)
    lams = np.linspace(0, 1, 11)
    torch_map = torch.nn.Sequential(torch.nn.Linear(1, 1))
    with torch.no_grad():
        torch_map[0].weight.fill_(40.0)
        torch_map[0].bias.fill_(-20.0)

    def features(x: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return torch.sigmoid(torch_map(torch.from_numpy(x)))

    w, b = np.array([[1.0], [-1.0]]), np.array([-0.5, 0.5])  # margin 2h - 1
    g = mixup_probe(features, xa, xb, lams=lams, classifier=(w, b))
    assert g.linearity_gap > 0.35  # measured 0.3820 (lam = 0.4 and 0.6)
    assert g.frac_a is not None
    assert g.frac_a.tolist() == [0.0] * 6 + [1.0] * 5
    assert g.position[0] == pytest.approx(0.0, abs=1e-6)
    assert g.position[-1] == pytest.approx(1.0, abs=1e-6)


def test_errors_name_the_parameter() -> None:
    xa, xb, _, _ = _data(0)
    with pytest.raises(ValueError, match="lams must be a non-empty 1-D sequence in"):
        mixup_probe(lambda x: x, xa, xb, lams=[1.5])
    with pytest.raises(ValueError, match="n_pairs must be <="):
        mixup_probe(lambda x: x, xa, xb, n_pairs=31)
    with pytest.raises(ValueError, match="x_a and x_b must be"):
        mixup_probe(lambda x: x, xa, xb[:, :3])
    with pytest.raises(ValueError, match="mean_a and mean_b must differ"):
        mixup_geometry([xa], [0.5], np.zeros(5), np.zeros(5))
    with pytest.raises(ValueError, match="classes must index"):
        mixup_probe(lambda x: x, xa, xb, classifier=(np.ones((2, 5)), None), classes=(0, 2))
    with pytest.raises(ValueError, match="classifier weight must have shape"):
        mixup_probe(lambda x: x, xa, xb, classifier=(np.ones((2, 4)), None))
    with pytest.raises(ValueError, match="mixed must hold one array per lam"):
        mixup_geometry([xa], [0.5, 0.6], np.zeros(5), np.ones(5))
