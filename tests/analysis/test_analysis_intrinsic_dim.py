"""Intrinsic-dimension estimators: recovery on known manifolds, naive references, skdim."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedlab.analysis import effective_rank, mle_id, pca_dims, twonn


def _rotation(rng: np.random.Generator, d: int, ambient: int = 100) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(ambient, ambient)))
    return q[:d]  # (d, ambient) orthonormal rows


def subspace(d: int, n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ _rotation(rng, d)


def swiss_roll(n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
    h = 21 * rng.uniform(size=n)
    return np.stack([t * np.cos(t), h, t * np.sin(t)], axis=1) @ _rotation(rng, 3)


def naive_twonn(x: np.ndarray, discard_fraction: float = 0.1) -> float:
    """O(n^2) TwoNN straight from Facco et al.: full distance matrix, sort each row."""
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    srt = np.sort(d, axis=1)
    mu = np.sort(srt[:, 1] / srt[:, 0])
    n = len(mu)
    keep = int(n * (1 - discard_fraction))
    xs = np.log(mu[:keep])
    ys = -np.log(1 - np.arange(1, keep + 1) / n)
    return float((xs * ys).sum() / (xs * xs).sum())


def naive_mle(x: np.ndarray, k: int) -> float:
    """Levina–Bickel per point, combined by the harmonic mean, with explicit loops."""
    n = len(x)
    inverses = []
    for i in range(n):
        dist = sorted(float(np.linalg.norm(x[i] - x[j])) for j in range(n) if j != i)[:k]
        inverses.append(sum(np.log(dist[-1] / dist[j]) for j in range(k - 1)) / (k - 1))
    return float(1.0 / np.mean(inverses))


@pytest.mark.parametrize(
    ("d", "seed", "tol_twonn", "tol_mle"),
    [
        (2, 0, 0.05, 0.05),  # measured twonn 1.982, mle 2.023
        (5, 0, 0.05, 0.05),  # measured twonn 5.101, mle 5.028
        (10, 0, 0.12, 0.12),  # measured twonn 9.576, mle 9.142 (both biased low at d=10)
        (5, 1, 0.05, 0.05),  # measured twonn 5.105, mle 5.042
        (10, 1, 0.12, 0.12),  # measured twonn 9.063, mle 9.069
    ],
)
def test_recovers_linear_subspace(d: int, seed: int, tol_twonn: float, tol_mle: float) -> None:
    x = subspace(d, seed=seed)
    assert twonn(x) == pytest.approx(d, rel=tol_twonn)
    assert mle_id(x) == pytest.approx(d, rel=tol_mle)


@pytest.mark.parametrize("seed", [0, 1])
def test_recovers_swiss_roll(seed: int) -> None:
    x = swiss_roll(seed=seed)
    # measured twonn 1.915 / 1.988, mle 1.946 / 1.954 (seeds 0 / 1)
    assert twonn(x) == pytest.approx(2.0, rel=0.06)
    assert mle_id(x) == pytest.approx(2.0, rel=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_twonn_equals_naive_reference(seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(300, 6))
    assert twonn(x) == pytest.approx(naive_twonn(x), abs=1e-6)
    assert twonn(x, discard_fraction=0.2) == pytest.approx(naive_twonn(x, 0.2), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_mle_equals_naive_reference(seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(150, 4))
    assert mle_id(x, k=10) == pytest.approx(naive_mle(x, 10), abs=1e-6)


def test_mle_k_range_is_mean_over_k() -> None:
    x = subspace(3, n=500)
    expected = np.mean([mle_id(x, k) for k in range(10, 16)])
    assert mle_id(x, 10, k2=15) == pytest.approx(expected, abs=1e-12)


def test_twonn_fit_and_torch_input() -> None:
    x = subspace(4, n=800)
    fit = twonn(torch.from_numpy(x).float(), return_fit=True)
    assert fit.n_points == 800 and fit.n_duplicates == 0
    assert fit.log_mu.shape == fit.neg_log_survival.shape == (int(800 * 0.9),)
    assert np.all(np.diff(fit.log_mu) >= 0)
    assert fit.dimension == pytest.approx(twonn(x), rel=1e-4)  # float32 input


def test_against_scikit_dimension() -> None:
    skdim = pytest.importorskip("skdim")
    for x in (subspace(5, n=1500), swiss_roll(n=1500)):
        ours_t, ref_t = twonn(x), float(skdim.id.TwoNN().fit(x).dimension_)
        ours_m, ref_m = mle_id(x, 20), float(skdim.id.MLE().fit(x).dimension_)
        # measured relative difference: 0 to 1e-12 (same estimator, same neighbours)
        assert abs(ours_t - ref_t) / ref_t < 1e-6
        assert abs(ours_m - ref_m) / ref_m < 1e-6


def test_pca_dims_and_effective_rank() -> None:
    rng = np.random.default_rng(0)
    scales = np.array([10.0, 5.0, 2.0, 1.0, 0.5])
    x = (rng.normal(size=(4000, 5)) * scales) @ _rotation(rng, 5, 30)
    res = pca_dims(x, thresholds=(0.5, 0.9, 0.999))
    var = scales**2 / (scales**2).sum()
    np.testing.assert_allclose(res.explained_variance_ratio[:5], var, rtol=0.08)
    assert res.dims == (1, 2, 5)
    assert res.cumulative[-1] == pytest.approx(1.0)
    # effective rank: exp entropy of normalised singular values, vs numpy's SVD
    s = np.linalg.svd(x, compute_uv=False)
    p = s / s.sum()
    assert effective_rank(x) == pytest.approx(float(np.exp(-(p * np.log(p)).sum())), rel=1e-9)
    assert effective_rank(np.eye(7)) == pytest.approx(7.0)


def test_duplicates_dropped_with_count_warning() -> None:
    x = subspace(3, n=400)
    x = np.concatenate([x, x[:7]])  # 7 duplicated pairs -> 14 points with r1 = 0
    # and 2 points whose two nearest neighbours are the two copies of one point (r2 = r1)
    with (
        pytest.warns(UserWarning, match=r"dropped 14 of 407 points .*duplicate"),
        pytest.warns(UserWarning, match=r"dropped 2 of 407 points whose two nearest .*equidist"),
    ):
        fit = twonn(x, return_fit=True)
    assert fit.n_duplicates == 14 and fit.n_ties == 2
    with pytest.warns(UserWarning, match=r"mle_id: dropped 14 of 407"):
        mle_id(x)


def test_too_few_points() -> None:
    with pytest.raises(ValueError, match=r"X has 10 points but k=20 nearest neighbours"):
        mle_id(np.random.default_rng(0).normal(size=(10, 3)))
    with pytest.raises(ValueError, match=r"X has 2 points but TwoNN"):
        twonn(np.ones((2, 3)))


def test_nan_row_is_named() -> None:
    x = np.random.default_rng(0).normal(size=(50, 3))
    x[17, 1] = np.nan
    x[30, 0] = np.inf
    with pytest.raises(ValueError, match=r"X must be finite, got NaN or inf in row 17 \(2 bad"):
        twonn(x)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.ones(10), r"X must be a 2-D array \(n_points, dim\), got shape \(10,\)"),
        (np.ones((4, 3, 2)), r"got shape \(4, 3, 2\)"),
        (np.array([["a", "b"]] * 5), r"X must hold real numbers"),
    ],
)
def test_bad_shapes(bad: np.ndarray, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        twonn(bad)


def test_bad_parameters() -> None:
    x = subspace(2, n=100)
    with pytest.raises(ValueError, match=r"discard_fraction must be in \(0, 1\), got 1.5"):
        twonn(x, discard_fraction=1.5)
    with pytest.raises(ValueError, match=r"k must be >= 2, got 1"):
        mle_id(x, k=1)
    with pytest.raises(ValueError, match=r"k2 must be >= 20, got 5"):
        mle_id(x, k2=5)
    with pytest.raises(ValueError, match=r"thresholds must be in \(0, 1\], got 1.2"):
        pca_dims(x, thresholds=(0.9, 1.2))
