"""distortion (naive reference, bad input), shortest_path_metric, fit_metric_embedding."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from embedlab.graph.metric_embedding import (
    distortion,
    fit_metric_embedding,
    shortest_path_metric,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: on a busy machine several threads spin and cost far more CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _path(n: int) -> sp.csr_matrix:
    upper = sp.diags(np.ones(n - 1), 1, shape=(n, n))
    return sp.csr_matrix(upper + upper.T)


def _naive_distortion(t: np.ndarray, e: np.ndarray) -> float:
    ratios = [e[i, j] / t[i, j] for i, j in itertools.combinations(range(len(t)), 2)]
    return max(ratios) / min(ratios)


def test_distortion_matches_naive_and_is_scale_free() -> None:
    rng = np.random.default_rng(0)
    pts = rng.standard_normal((12, 3))
    t = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    e = np.abs(pts[:, None, 0] - pts[None, :, 0]) + t  # l1 on one axis + l2: a metric
    assert distortion(t, e) == pytest.approx(_naive_distortion(t, e), rel=1e-12)
    assert distortion(t, 5.0 * t) == pytest.approx(1.0)
    assert distortion(t, e) >= 1.0


def test_shortest_path_metric() -> None:
    d = shortest_path_metric(_path(5))
    np.testing.assert_array_equal(d, np.abs(np.arange(5)[:, None] - np.arange(5)[None]))
    with pytest.raises(ValueError, match=r"adj must be a connected graph"):
        shortest_path_metric(sp.csr_matrix((3, 3)))


@pytest.mark.parametrize(
    ("d_true", "match"),
    [
        (np.array([[0.0, np.nan], [np.nan, 0.0]]), r"d_true must be finite, got nan at \(0, 1\)"),
        (np.array([[0.0, np.inf], [np.inf, 0.0]]), r"d_true must be finite"),
        (np.array([[0.0, 1.0], [2.0, 0.0]]), r"d_true must be symmetric"),
        (np.array([[1.0, 1.0], [1.0, 0.0]]), r"d_true must have a zero diagonal"),
        (np.array([[0.0, 0.0], [0.0, 0.0]]), r"d_true must be positive between distinct"),
        (np.array([[0.0, -1.0], [-1.0, 0.0]]), r"d_true must be positive between distinct"),
        (
            np.array([[0.0, 1, 5], [1, 0, 1], [5, 1, 0]]),
            r"d_true must satisfy the triangle inequality.*d\(0,2\) = 5 > d\(0,1\) \+ d\(1,2\) = 2",
        ),
        (np.zeros((1, 1)), r"d_true must hold at least 2 points"),
        (np.zeros((2, 3)), r"d_true must be a square"),
    ],
)
def test_distortion_rejects_bad_true_metric(d_true: np.ndarray, match: str) -> None:
    ok = np.ones_like(d_true) - np.eye(*d_true.shape) if d_true.shape[0] == d_true.shape[1] else 0
    with pytest.raises(ValueError, match=match):
        distortion(d_true, ok)


def test_distortion_rejects_bad_embedding() -> None:
    t = shortest_path_metric(_path(3))
    with pytest.raises(ValueError, match=r"d_emb must be finite"):
        distortion(t, np.where(t > 1, np.nan, t))
    squared = t**2  # not a metric: 4 > 1 + 1
    with pytest.raises(ValueError, match=r"d_emb must satisfy the triangle inequality"):
        distortion(t, squared)
    assert distortion(t, squared, emb_triangle=False) == pytest.approx(2.0)
    with pytest.raises(ValueError, match=r"d_emb must have the shape of d_true"):
        distortion(t, shortest_path_metric(_path(4)))


def test_fit_reaches_low_distortion_on_a_path() -> None:
    d = shortest_path_metric(_path(6))  # isometric to points on a line
    euc = fit_metric_embedding(d, 1, geometry="euclidean", steps=50)
    assert euc.distortion < 1.02 and euc.snowflake is None
    snow = fit_metric_embedding(d, 2, geometry="snowflake", steps=30)
    assert snow.points.shape == (6, 2) and snow.snowflake is not None
    assert snow.distortion == pytest.approx(distortion(d, snow.distances), rel=1e-12)
    with pytest.raises(ValueError, match=r"geometry must be one of"):
        fit_metric_embedding(d, 2, geometry="hyperbolic")
