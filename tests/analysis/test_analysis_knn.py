"""Exact kNN: torch and faiss paths agree with brute force and with each other."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.analysis import faiss_available, knn


def brute(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.sqrt(((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, axis=1), idx


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_path_equals_brute_force(seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(400, 17)).astype(np.float32)
    dist, idx = knn(x, 7, backend="torch")
    ref_d, ref_i = brute(x, 7)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-12)


def test_exact_far_from_origin() -> None:
    # float32 |x|^2 + |y|^2 - 2xy would lose these neighbours' order at offset 1e4
    rng = np.random.default_rng(0)
    x = 1e4 + rng.normal(size=(300, 8)) * 1e-2
    dist, idx = knn(x, 3, backend="torch")
    ref_d, ref_i = brute(x, 3)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, rtol=1e-9)


def test_duplicates_are_neighbours_self_is_not() -> None:
    x = np.random.default_rng(0).normal(size=(50, 4))
    x = np.concatenate([x, x[:3], x[:3]])  # points 0..2 appear three times
    for backend in ("torch", "faiss") if faiss_available() else ("torch",):
        dist, idx = knn(x, 2, backend=backend)  # type: ignore[arg-type]
        assert np.all(idx != np.arange(len(x))[:, None])
        np.testing.assert_array_equal(dist[[0, 50, 53], :2], 0.0)
        assert sorted(idx[0].tolist()) == [50, 53]


def test_faiss_and_torch_agree() -> None:
    pytest.importorskip("faiss")
    x = np.random.default_rng(3).normal(size=(2000, 48)).astype(np.float32)
    d_t, i_t = knn(x, 20, backend="torch")
    d_f, i_f = knn(x, 20, backend="faiss")
    np.testing.assert_array_equal(i_t, i_f)
    np.testing.assert_array_equal(d_t, d_f)  # both re-ranked exactly in float64


def test_bad_arguments() -> None:
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"X has 5 points but k=5 nearest neighbours"):
        knn(x, 5)
    with pytest.raises(ValueError, match=r"backend must be one of auto, faiss, torch; got 'gpu'"):
        knn(x, 2, backend="gpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"k must be >= 1, got 0"):
        knn(x, 0)
