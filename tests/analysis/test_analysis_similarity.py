"""CKA, relative representations, unit matching and space alignment against references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedlab.analysis import (
    cca_align,
    linear_cka,
    match_units,
    mean_center_align,
    procrustes,
    rbf_cka,
    relative_projection,
    sparse_match_units,
    stitch,
    subspace_align,
    unit_correlation,
)


def _orth(rng: np.random.Generator, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def naive_hsic_cka(k: np.ndarray, l_: np.ndarray) -> float:
    """CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), HSIC = tr(K H L H) / (n - 1)^2."""
    n = k.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n

    def hsic(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.trace(a @ h @ b @ h)) / (n - 1) ** 2

    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


def naive_unbiased_hsic(k: np.ndarray, l_: np.ndarray) -> float:
    """Song et al. (2012), eq. 5, written with explicit sums."""
    n = k.shape[0]
    kt, lt = k.copy(), l_.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    one = np.ones(n)
    return float(
        np.trace(kt @ lt)
        + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
        - 2 / (n - 2) * (one @ kt @ lt @ one)
    ) / (n * (n - 3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_cka_invariances_and_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(120, 10))
    y = x @ rng.normal(size=(10, 7)) + 0.5 * rng.normal(size=(120, 7))
    value = linear_cka(x, y)
    assert value == pytest.approx(naive_hsic_cka(x @ x.T, y @ y.T), abs=1e-10)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x @ _orth(rng, 10), 3.7 * y) == pytest.approx(value, abs=1e-10)
    assert linear_cka(torch.from_numpy(x), y) == pytest.approx(value, abs=1e-12)
    assert 0.0 <= linear_cka(x, rng.normal(size=(120, 7))) < 0.3


@pytest.mark.parametrize("seed", [0, 1])
def test_debiased_cka_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 5))
    y = np.tanh(x @ rng.normal(size=(5, 4)))
    k, l_ = x @ x.T, y @ y.T
    expected = naive_unbiased_hsic(k, l_) / np.sqrt(
        naive_unbiased_hsic(k, k) * naive_unbiased_hsic(l_, l_)
    )
    assert linear_cka(x, y, debiased=True) == pytest.approx(expected, abs=1e-10)
    assert linear_cka(x, x, debiased=True) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_rbf_cka(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(80, 6))
    y = np.sin(x @ rng.normal(size=(6, 6)))
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    e2 = ((y[:, None] - y[None]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * np.median(d2)))
    l_ = np.exp(-e2 / (2 * np.median(e2)))
    value = rbf_cka(x, y)
    assert value == pytest.approx(naive_hsic_cka(k, l_), abs=1e-10)
    assert rbf_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert rbf_cka(5 * x @ _orth(rng, 6), y) == pytest.approx(value, abs=1e-10)
    k1 = np.exp(-d2 / 2.0)
    l1 = np.exp(-e2 / 2.0)
    assert rbf_cka(x, y, sigma=1.0) == pytest.approx(naive_hsic_cka(k1, l1), abs=1e-10)


def test_relative_projection_invariance() -> None:
    rng = np.random.default_rng(0)
    z, anchors = rng.normal(size=(200, 16)), rng.normal(size=(30, 16))
    rel = relative_projection(z, anchors)
    q = _orth(rng, 16)
    np.testing.assert_allclose(relative_projection(4.2 * z @ q, 4.2 * anchors @ q), rel, atol=1e-12)
    naive = np.array([[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in anchors] for a in z])
    np.testing.assert_allclose(rel, naive, atol=1e-12)
    with pytest.raises(ValueError, match=r"anchors must have the same dim as X \(16\)"):
        relative_projection(z, anchors[:, :5])


def test_stitch_applies_head_to_relative_representation() -> None:
    rng = np.random.default_rng(0)
    z, anchors = rng.normal(size=(50, 8)), rng.normal(size=(12, 8))
    head = torch.nn.Linear(12, 3).double()
    head.train()
    out = stitch(z, anchors, head)
    expected = head(torch.from_numpy(relative_projection(z, anchors))).detach().numpy()
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert head.training  # mode restored


def test_procrustes_recovers_planted_rotation() -> None:
    for seed in (0, 1, 2):
        rng = np.random.default_rng(seed)
        x, q = rng.normal(size=(300, 12)), _orth(rng, 12)
        fit = procrustes(x, 2.5 * x @ q + 1.0)
        np.testing.assert_allclose(fit.rotation, q, atol=1e-10)
        assert fit.scale == pytest.approx(2.5) and fit.error < 1e-12
        np.testing.assert_allclose(fit.transform(x[:5]), 2.5 * x[:5] @ q + 1.0, atol=1e-10)
        noisy = procrustes(x, x @ q + 0.1 * rng.normal(size=x.shape), scaling=False)
        assert np.abs(noisy.rotation - q).max() < 0.05 and noisy.scale == 1.0


def test_match_units_recovers_planted_permutation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 20))
    perm = rng.permutation(20)
    y = x[:, perm] * rng.uniform(0.5, 2.0, size=20) + 0.3 * rng.normal(size=(500, 20))
    m = match_units(x, y)
    # unit perm[j] of X is unit j of Y
    np.testing.assert_array_equal(m.y_units[perm], np.arange(20))
    assert m.mean_correlation > 0.9
    corr = unit_correlation(x, y)
    np.testing.assert_allclose(corr[3, 7], np.corrcoef(x[:, 3], y[:, 7])[0, 1], atol=1e-12)


def test_sparse_match_units_few_to_one() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 10))
    y = np.stack([x[:, 2] + x[:, 5], x[:, 7]], axis=1)
    sm = sparse_match_units(x, y, alpha=0.05)
    assert set(np.flatnonzero(np.abs(sm.weights[:, 0]) > 0.1)) == {2, 5}
    assert set(np.flatnonzero(np.abs(sm.weights[:, 1]) > 0.1)) == {7}
    assert np.all(sm.r2 > 0.9)


def test_cca_recovers_shared_signal() -> None:
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(1000, 3))
    x = np.hstack([shared, rng.normal(size=(1000, 5))]) @ rng.normal(size=(8, 8))
    y = np.hstack([shared, rng.normal(size=(1000, 4))]) @ rng.normal(size=(7, 7))
    cca = cca_align(x, y, 4)
    np.testing.assert_allclose(cca.correlations[:3], 1.0, atol=1e-10)
    assert cca.correlations[3] < 0.2
    u, v = cca.transform_x(x), cca.transform_y(y)
    np.testing.assert_allclose(np.cov(u.T, bias=True), np.eye(4), atol=1e-8)
    np.testing.assert_allclose(np.corrcoef(u[:, 0], v[:, 0])[0, 1], cca.correlations[0], atol=1e-8)
    with pytest.raises(ValueError, match=r"n_components must be <= min\(rank X, rank Y\) = 7"):
        cca_align(x, y, 8)


def test_subspace_align_drops_noise_directions() -> None:
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(600, 4)) * 5.0
    x = np.hstack([signal, rng.normal(size=(600, 30))]) @ _orth(rng, 34)
    y = np.hstack([signal, rng.normal(size=(600, 30))]) @ _orth(rng, 34)
    low = subspace_align(x, y, 4)
    full = procrustes(x, y)
    # measured 0.987 on the 4-d subspaces vs 1 - error = 0.420 on the full spaces
    assert low.score > 0.98 and low.score > 1 - full.error + 0.5
    assert low.x_aligned.shape == (600, 4)
    cc = subspace_align(x, y, 4, method="cca")
    assert cc.score > 0.99  # measured 0.99992
    with pytest.raises(ValueError, match=r"dim must be <= min\(n_samples, d_x, d_y\) = 34"):
        subspace_align(x, y, 40)
    with pytest.raises(ValueError, match=r"method must be one of cca, procrustes; got 'svd'"):
        subspace_align(x, y, 4, method="svd")  # type: ignore[arg-type]


def test_mean_center_align_closes_modality_gap() -> None:
    rng = np.random.default_rng(0)
    content = rng.normal(size=(100, 16))
    img = content + 5.0 * np.eye(16)[0]  # each modality in its own cone
    txt = (
        content + 0.3 * rng.normal(size=(100, 16)) + 5.0 * (np.eye(16)[0] + np.eye(16)[1]) / 2**0.5
    )
    a, b = mean_center_align(img, txt)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0)
    rel = relative_projection(img, txt)
    after = a @ b.T
    assert np.mean(np.argmax(after, axis=1) == np.arange(100)) >= np.mean(
        np.argmax(rel, axis=1) == np.arange(100)
    )
    assert abs(float(np.mean(after))) < 0.05 < 0.3 < float(np.mean(rel))  # measured 0.0002, 0.434


def test_paired_inputs_must_match() -> None:
    x = np.zeros((10, 3)) + np.arange(3)
    with pytest.raises(ValueError, match=r"X and Y must have the same number of rows .* 10 and 9"):
        linear_cka(np.random.default_rng(0).normal(size=(10, 3)), x[:9])
    with pytest.raises(ValueError, match=r"CKA is undefined when X or Y has zero variance"):
        linear_cka(np.random.default_rng(0).normal(size=(10, 3)), x)
    with pytest.raises(ValueError, match=r"Y must be finite, got NaN or inf in row 2"):
        bad = np.ones((10, 3))
        bad[2, 0] = np.nan
        procrustes(x, bad)
