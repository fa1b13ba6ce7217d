"""Semi-supervised k-means against a naive float64 loop; its bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.cluster import SSKMeansClusterer, make_clusterer, semi_supervised_kmeans


def naive_ss_kmeans(
    x: np.ndarray, y: np.ndarray, k: int, seed: int, n_init: int, max_iter: int, tol: float
) -> tuple[list[int], float]:
    """Loops over samples and clusters; the same draws as the library (one generator)."""
    rng = np.random.default_rng(seed)
    n, d = x.shape

    def sq(a: np.ndarray, b: np.ndarray) -> float:
        return float(sum((a[j] - b[j]) ** 2 for j in range(d)))

    best_labels: list[int] = []
    best_inertia = float("inf")
    for _ in range(n_init):
        centres = [np.zeros(d) for _ in range(k)]
        chosen = []
        for c in range(k):
            members = [x[i] for i in range(n) if y[i] == c]
            if members:
                centres[c] = sum(members) / len(members)
                chosen.append(c)
        pool = [x[i] for i in range(n) if y[i] == -1]
        for c in range(k):
            if c in chosen:
                continue
            if not chosen:
                pick = int(rng.integers(len(pool)))
            else:
                d2 = [min(sq(p, centres[j]) for j in chosen) for p in pool]
                r, acc, pick = rng.random(), 0.0, len(pool) - 1
                for i, v in enumerate(d2):
                    acc += v / sum(d2)
                    if acc >= r:
                        pick = i
                        break
            centres[c] = pool[pick].copy()
            chosen.append(c)
        run_best: tuple[list[int], float] = ([], float("inf"))
        for _ in range(max_iter):
            labels = [
                int(y[i]) if y[i] >= 0 else min(range(k), key=lambda j: sq(x[i], centres[j]))
                for i in range(n)
            ]
            inertia = sum(sq(x[i], centres[labels[i]]) for i in range(n))
            new = []
            for j in range(k):
                members = [x[i] for i in range(n) if labels[i] == j]
                new.append(sum(members) / len(members) if members else centres[j])
            shift = sum(np.sqrt(sq(a, b)) for a, b in zip(new, centres, strict=True))
            centres = new
            if inertia < run_best[1]:
                run_best = (labels, inertia)
            if shift**2 < tol:
                break
        if run_best[1] < best_inertia:
            best_labels, best_inertia = run_best
    return best_labels, best_inertia


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_the_naive_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.r_[rng.normal(size=(12, 2)), rng.normal(size=(12, 2)) + 2.0, rng.normal(size=(6, 2))]
    y = np.full(30, -1)
    y[:4], y[12:15] = 2, 0  # clusters 2 and 0 labelled; 1 and 3 free
    labels, _, inertia = semi_supervised_kmeans(x, y, 4, seed=seed, n_init=3, max_iter=5, tol=0)
    want, want_inertia = naive_ss_kmeans(x, y, 4, seed, 3, 5, 0.0)
    assert labels.tolist() == want
    assert inertia == pytest.approx(want_inertia, rel=1e-12)
    assert (labels[y >= 0] == y[y >= 0]).all()


def test_no_labels_is_kmeans_and_labels_pull_the_partition() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = np.full(40, -1)
    labels, _, inertia = semi_supervised_kmeans(x, y, 3, seed=1)
    want, want_inertia = naive_ss_kmeans(x, y, 3, 1, 10, 100, 1e-4)
    assert labels.tolist() == want and inertia == pytest.approx(want_inertia)
    # an elongated pair of groups: labels split it the labelled way, not the k-means way
    x2 = np.c_[np.r_[np.zeros(10), np.full(10, 10.0)], np.r_[np.arange(10), np.arange(10)]]
    y2 = np.full(20, -1)
    y2[[0, 10]], y2[[9, 19]] = 0, 1  # bottom rows cluster 0, top rows cluster 1
    got = SSKMeansClusterer(n_clusters=2).fit_predict(x2, y2)
    assert got[[0, 1, 10, 11]].tolist() == [0, 0, 0, 0] and got[[8, 9, 18]].tolist() == [1, 1, 1]


def test_bad_input_names_the_parameter() -> None:
    x = np.random.default_rng(0).normal(size=(10, 2))
    model = make_clusterer("ss_kmeans", n_clusters=3)
    with pytest.raises(ValueError, match=r"y must be -1 \(unlabelled\) or a cluster in "
                       r"\[0, n_clusters=3\), got 3 at index 2"):  # fmt: skip
        model.fit(x, [0, -1, 3, -1, -1, -1, -1, -1, -1, -1])
    with pytest.raises(ValueError, match=r"got -2 at index 0"):
        model.fit(x, [-2] + [-1] * 9)
    with pytest.raises(ValueError, match="y must leave at least one sample unlabelled"):
        model.fit(x, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"y must leave at least 2 samples unlabelled to seed"):
        model.fit(x, [0] * 9 + [-1])
    with pytest.raises(ValueError, match=r"y must have shape \(10,\)"):
        model.fit(x, [-1] * 9)
    with pytest.raises(TypeError, match="y must hold integers"):
        model.fit(x, np.full(10, -1.0))
    with pytest.raises(ValueError, match="n_init must be >= 1, got 0"):
        make_clusterer("ss_kmeans(n_init=0)", n_clusters=3)
    with pytest.raises(ValueError, match="tol must be >= 0"):
        make_clusterer("ss_kmeans(tol=-1)", n_clusters=3)
    model.fit(x, [0, 1] + [-1] * 8)
    with pytest.raises(ValueError, match="X must have 2 features as in fit, got 3"):
        model.predict(np.zeros((2, 3)))
