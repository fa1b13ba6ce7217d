"""DKM numerics against naive float64 references (explicit log-det / trace formulas)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from embedlab.kernels import (
    NNGPClassifier,
    SparseDKMClassifier,
    dkm_objective,
    gaussian_kl,
    relu_kernel,
    sgpr_bound,
    sgpr_predict,
)


def naive_relu_kernel(g: np.ndarray) -> np.ndarray:
    n = g.shape[0]
    k = np.empty_like(g)
    for i in range(n):
        for j in range(n):
            norm = math.sqrt(g[i, i] * g[j, j])
            c = min(1.0, max(-1.0, g[i, j] / norm))
            t = math.acos(c)
            k[i, j] = norm * (math.sin(t) + (math.pi - t) * c) / math.pi
    return k


def naive_kl(g: np.ndarray, k: np.ndarray) -> float:
    n = g.shape[0]
    kinv = np.linalg.inv(k)
    return 0.5 * (np.trace(kinv @ g) - n + np.linalg.slogdet(k)[1] - np.linalg.slogdet(g)[1])


def naive_loglik(k: np.ndarray, y: np.ndarray, noise: float) -> float:
    n = k.shape[0]
    c = k + noise * np.eye(n)
    cinv = np.linalg.inv(c)
    total = 0.0
    for col in y.T:
        total += -0.5 * (col @ cinv @ col + np.linalg.slogdet(c)[1] + n * math.log(2 * math.pi))
    return total


def random_gram(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    a = rng.normal(size=(n, d))
    return a @ a.T / d + 0.1 * np.eye(n)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relu_kernel_matches_loop(seed: int) -> None:
    g = random_gram(np.random.default_rng(seed), 7, 3)
    out = relu_kernel(torch.from_numpy(g)).numpy()
    np.testing.assert_allclose(out, naive_relu_kernel(g), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.diag(out), np.diag(g))  # He scaling keeps the diagonal


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dkm_objective_matches_naive_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, nu, noise = 8, (0.7, 3.0), 0.2
    g0, g1, g2 = (random_gram(rng, n, d) for d in (4, 6, 5))
    y = rng.normal(size=(n, 3))
    expected = (
        naive_loglik(naive_relu_kernel(g2), y, noise)
        - nu[0] * naive_kl(g1, naive_relu_kernel(g0))
        - nu[1] * naive_kl(g2, naive_relu_kernel(g1))
    )
    t = torch.from_numpy
    got = dkm_objective([t(g1), t(g2)], t(g0), t(y), nu, noise=noise)
    assert float(got) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert float(gaussian_kl(t(g1), t(g1))) == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_sgpr_bound_and_prediction_match_dense_formulas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m, s, noise = 12, 4, 5, 0.3
    full = naive_relu_kernel(random_gram(rng, n + m + s, 3))
    k_ii, k_ti, k_si = full[:m, :m], full[m : m + n, :m], full[m + n :, :m]
    k_tt, k_ss = full[m : m + n, m : m + n], full[m + n :, m + n :]
    y = rng.normal(size=(n, 2))
    q = k_ti @ np.linalg.inv(k_ii) @ k_ti.T
    expected = naive_loglik(q, y, noise) - 2 * np.trace(k_tt - q) / (2 * noise)
    t = torch.from_numpy
    got = sgpr_bound(t(k_ii), t(k_ti), t(np.diag(k_tt).copy()), t(y), noise)
    assert float(got) == pytest.approx(expected, rel=1e-8)
    sigma = np.linalg.inv(k_ii + k_ti.T @ k_ti / noise)
    mean_ref = k_si @ sigma @ k_ti.T @ y / noise
    var_ref = np.diag(k_ss - k_si @ np.linalg.inv(k_ii) @ k_si.T + k_si @ sigma @ k_si.T)
    mean, var = sgpr_predict(t(k_ii), t(k_ti), t(y), noise, t(k_si), t(np.diag(k_ss).copy()))
    np.testing.assert_allclose(mean.numpy(), mean_ref, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(var.numpy(), var_ref, rtol=1e-6, atol=1e-10)


def test_sparse_nngp_with_all_points_inducing_equals_exact_nngp() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(25, 4)), rng.integers(0, 3, 25)
    xs = rng.normal(size=(6, 4))
    exact = NNGPClassifier(n_layers=2, noise=0.1).fit(x, y)
    sparse = SparseDKMClassifier(
        n_layers=2, n_inducing=25, nu=math.inf, noise=0.1, steps=0, learn_inputs=False
    ).fit(x, y)
    np.testing.assert_allclose(sparse.predict_mean(xs), exact.predict_mean(xs), atol=1e-6)
    assert sparse.log_density(xs, y[:6]) == pytest.approx(exact.log_density(xs, y[:6]), abs=1e-5)
