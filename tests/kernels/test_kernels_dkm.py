"""DKM behaviour: the large-nu limit is the NNGP, determinism, errors on bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from embedlab.kernels import (
    DeepKernelMachine,
    SparseDKMClassifier,
    input_gram,
    nngp_grams,
)


def toy(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    return x, (x[:, 0] + 0.5 * x[:, 1] ** 2 > 0.3).astype(np.int64)


def test_large_nu_gives_the_nngp_grams_and_small_nu_does_not() -> None:
    x, y = toy()
    big = DeepKernelMachine(n_layers=2, nu=1e4, steps=20).fit(x, y)
    ref = nngp_grams(input_gram(x), 2)
    for g, k in zip(big.grams_, ref, strict=True):
        assert float(torch.linalg.norm(g - k) / torch.linalg.norm(k)) < 1e-3  # measured 3e-5
    assert max(big.nngp_distance()) < 1e-3
    small = DeepKernelMachine(n_layers=2, nu=1.0, steps=20).fit(x, y)
    assert max(small.nngp_distance()) > 0.05  # measured 0.13: representation learning
    assert small.objective_ > small.history_[0]  # the optimiser improved the objective


def test_infinite_nu_is_exactly_nngp() -> None:
    x, y = toy()
    dkm = DeepKernelMachine(n_layers=3, nu=math.inf).fit(x, y)
    for g, k in zip(dkm.grams_, nngp_grams(input_gram(x), 3), strict=True):
        assert torch.equal(g, k)


def test_sparse_dkm_is_deterministic_under_a_seed() -> None:
    x, y = toy(60)
    a = SparseDKMClassifier(n_inducing=10, nu=1.0, steps=15, seed=3).fit(x, y)
    b = SparseDKMClassifier(n_inducing=10, nu=1.0, steps=15, seed=3).fit(x, y)
    c = SparseDKMClassifier(n_inducing=10, nu=1.0, steps=15, seed=4).fit(x, y)
    assert a.history_ == b.history_
    np.testing.assert_array_equal(a.predict_mean(x), b.predict_mean(x))
    assert not np.array_equal(a.predict_mean(x), c.predict_mean(x))
    assert a.objective() > a.history_[0]
    assert float((a.predict(x) == y).mean()) > 0.8


@pytest.mark.parametrize("nu", [0, -1.0, [1.0, 0.0]])
def test_non_positive_nu_raises(nu: object) -> None:
    with pytest.raises(ValueError, match=r"nu must be > 0 \(inf for the NNGP limit\), got"):
        DeepKernelMachine(n_layers=2, nu=nu)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"nu must be > 0"):
        SparseDKMClassifier(n_layers=2, nu=nu)  # type: ignore[arg-type]


def test_nu_length_and_type_errors() -> None:
    with pytest.raises(ValueError, match=r"nu must have one value per layer \(2\), got 3"):
        DeepKernelMachine(n_layers=2, nu=[1.0, 1.0, 1.0])
    with pytest.raises(TypeError, match=r"nu must be a number"):
        DeepKernelMachine(nu="big")  # type: ignore[arg-type]


def test_nan_and_non_psd_inputs_raise() -> None:
    x, y = toy()
    x[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"x must be finite"):
        SparseDKMClassifier(n_inducing=5).fit(x, y)
    with pytest.raises(ValueError, match=r"x must be finite"):
        DeepKernelMachine().fit(x, y)
    bad = np.eye(4)
    bad[0, 0] = -1.0
    with pytest.raises(ValueError, match=r"gram0 must be positive semi-definite, got smallest"):
        DeepKernelMachine().fit_gram(bad, np.array([0, 1, 0, 1]))
    asym = np.eye(3)
    asym[0, 1] = 0.5
    with pytest.raises(ValueError, match=r"gram0 must be symmetric"):
        nngp_grams(asym, 1)
    with pytest.raises(ValueError, match=r"n_inducing must be <= the number of training points"):
        SparseDKMClassifier(n_inducing=100).fit(*toy())
    with pytest.raises(RuntimeError, match=r"call fit\(\) first"):
        SparseDKMClassifier().predict(x)
