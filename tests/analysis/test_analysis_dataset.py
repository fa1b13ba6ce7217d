"""d_data, label sharpness and d_repr."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedlab.analysis import d_data, d_repr, label_sharpness, mle_id, representations, twonn


def naive_sharpness(x: np.ndarray, y: np.ndarray, n_pairs: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    n = len(x)
    j = rng.integers(0, n, size=n_pairs)
    k = (j + rng.integers(1, n, size=n_pairs)) % n
    best = 0.0
    onehot = np.eye(int(y.max()) + 1)[y]
    for a, b in zip(j, k, strict=True):
        dx = float(np.linalg.norm(x[a] - x[b]))
        if dx > 0:
            best = max(best, float(np.linalg.norm(onehot[a] - onehot[b])) / dx)
    return best


@pytest.mark.parametrize("seed", [0, 1])
def test_label_sharpness_naive(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(300, 2, 3))  # flattened per sample
    y = rng.integers(0, 4, size=300)
    value = label_sharpness(x, y, n_pairs=2000, seed=seed)
    assert value == pytest.approx(naive_sharpness(x.reshape(300, -1), y, 2000, seed), rel=1e-12)
    assert label_sharpness(x, y, n_pairs=2000, seed=seed) == value  # deterministic


def test_label_sharpness_regression_and_constant() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = 2.5 * x[:, 0]  # Lipschitz constant 2.5 along axis 0
    value = label_sharpness(x, y, n_pairs=5000)
    assert 2.0 < value <= 2.5 + 1e-12
    assert label_sharpness(x, np.zeros(200, dtype=np.int64)) == 0.0
    with pytest.raises(ValueError, match=r"kind must be one of auto, class, value; got 'x'"):
        label_sharpness(x, y, kind="x")  # type: ignore[arg-type]


def test_d_data_and_d_repr() -> None:
    rng = np.random.default_rng(0)
    images = (rng.normal(size=(600, 3)) @ rng.normal(size=(3, 64))).reshape(600, 1, 8, 8)
    assert d_data(images) == pytest.approx(mle_id(images.reshape(600, -1)))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2)).double()
    model.train()
    feats = representations(model, images, batch_size=100)
    assert feats.shape == (600, 2) and model.training
    assert d_repr(model, images) == pytest.approx(mle_id(feats), rel=1e-5)
    assert d_repr(feats, estimator="twonn") == pytest.approx(twonn(feats))
    assert d_repr(feats) <= d_data(images) + 0.1  # d_data >= d_repr (measured 2.06 vs 3.11)
    with pytest.raises(ValueError, match=r"data must be given when representation is a torch"):
        d_repr(model)
