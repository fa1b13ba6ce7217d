"""Alignment/uniformity, neural collapse and hubness against naive loops."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from embedlab.analysis import alignment, hubness, k_occurrence, neural_collapse, uniformity


@pytest.mark.parametrize("seed", [0, 1])
def test_alignment_and_uniformity_naive(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(70, 5))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = x + 0.1 * rng.normal(size=x.shape)
    naive_align = sum(float(np.linalg.norm(a - b)) ** 3 for a, b in zip(x, y, strict=True)) / 70
    assert alignment(x, y, alpha=3) == pytest.approx(naive_align, rel=1e-12)
    pairs = [math.exp(-2 * float(((a - b) ** 2).sum())) for a, b in itertools.combinations(x, 2)]
    naive_unif = math.log(sum(pairs) / len(pairs))
    assert uniformity(x) == pytest.approx(naive_unif, abs=1e-10)
    assert uniformity(x, block=7) == pytest.approx(naive_unif, abs=1e-10)  # across blocks
    assert uniformity(x, t=0.5) < uniformity(x[:, :1].repeat(5, axis=1), t=0.5)


def _simplex_etf(c: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    m = np.eye(c) - np.ones((c, c)) / c  # (C, C), rows: centred one-hots
    q, _ = np.linalg.qr(rng.normal(size=(dim, c)))
    return 3.0 * m @ q.T  # (C, dim) equinorm, equiangular


def test_neural_collapse_perfect_on_simplex_etf() -> None:
    rng = np.random.default_rng(0)
    means = _simplex_etf(5, 12, rng)
    labels = np.repeat(np.arange(5), 20)
    nc = neural_collapse(means[labels] + 7.0, labels)  # a global offset changes nothing
    assert nc.nc1 == pytest.approx(0.0, abs=1e-20)
    for value in (nc.equinorm, nc.equiangularity, nc.max_angle, nc.etf_distance):
        assert value == pytest.approx(0.0, abs=1e-12)
    assert nc.n_classes == 5


def test_neural_collapse_against_naive_formula() -> None:
    rng = np.random.default_rng(1)
    c, dim = 4, 6
    labels = rng.integers(0, c, size=200)
    h = _simplex_etf(c, dim, rng)[labels] + 0.5 * rng.normal(size=(200, dim))
    mu_g = h.mean(axis=0)
    means = np.stack([h[labels == k].mean(axis=0) for k in range(c)])
    s_w = sum(np.outer(v - means[y], v - means[y]) for v, y in zip(h, labels, strict=True)) / 200
    s_b = sum(np.outer(m - mu_g, m - mu_g) for m in means) / c
    nc = neural_collapse(h, labels)
    expected = float(np.trace(s_w @ np.linalg.pinv(s_b, rcond=1e-10))) / c
    assert nc.nc1 == pytest.approx(expected, rel=1e-8)
    cm = means - mu_g
    cos = [
        float(cm[i] @ cm[j] / np.linalg.norm(cm[i]) / np.linalg.norm(cm[j]))
        for i in range(c)
        for j in range(c)
        if i != j
    ]
    assert nc.equiangularity == pytest.approx(float(np.std(cos)), rel=1e-10)
    assert nc.max_angle == pytest.approx(float(np.mean(np.abs(np.add(cos, 1 / (c - 1))))))
    norms = np.linalg.norm(cm, axis=1)
    assert nc.equinorm == pytest.approx(float(norms.std() / norms.mean()), rel=1e-10)
    assert nc.nc1 > 0.01


def test_neural_collapse_bad_labels() -> None:
    x = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError, match=r"neural collapse needs at least 2 classes, got 1"):
        neural_collapse(x, np.zeros(10, dtype=np.int64))
    with pytest.raises(
        ValueError, match=r"labels must have shape \(10,\) or \(10, m\), got \(9,\)"
    ):
        neural_collapse(x, np.zeros(9, dtype=np.int64))


@pytest.mark.parametrize("seed", [0, 1])
def test_hubness_naive(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(150, 30))
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    counts = np.zeros(150, dtype=np.int64)
    for i in range(150):
        for j in np.argsort(d[i], kind="stable")[:10]:
            counts[j] += 1
    np.testing.assert_array_equal(k_occurrence(x, 10), counts)
    c = counts - counts.mean()
    expected = float((c**3).mean() / (c**2).mean() ** 1.5)
    assert hubness(x) == pytest.approx(expected, rel=1e-12)
    # high-dimensional Gaussian data has hubs (Radovanović et al.): measured 2.16 for seed 0
    assert hubness(x) > 0.5


def test_hubness_too_few_points() -> None:
    with pytest.raises(ValueError, match=r"X has 5 points but k=10 nearest neighbours"):
        hubness(np.random.default_rng(0).normal(size=(5, 3)))
