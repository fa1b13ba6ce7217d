"""AC-PIC against a naive dense transcription of the algorithm (full affinity table, dense
inverses, every pair compared), plus its graph, its errors and DEPICT's AC-PIC start."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from embedlab.cluster import ACPICClusterer, acpic_labels, make_clusterer
from embedlab.cluster.acpic import _PathIntegrals, path_integral_graph


def naive_acpic(x: np.ndarray, k: int, n_neighbors: int, a: float, z: float) -> np.ndarray:
    """The algorithm step by step on dense matrices: the digraph, nearest-neighbour groups
    by relabelling, then repeatedly the pair (of all pairs) with the largest incremental
    path integral, each term from an explicit inverse."""
    n = len(x)
    d2 = cdist(x, x, "sqeuclidean")
    np.fill_diagonal(d2, np.inf)
    order = np.argsort(d2, axis=1, kind="stable")[:, :n_neighbors]
    near = np.take_along_axis(d2, order, axis=1)
    sig2 = near.mean() * a
    while np.any(np.exp(-near[:, 0] / sig2) < 1e-5):
        sig2 *= 2
    w = np.eye(n)
    for i in range(n):
        for col, j in enumerate(order[i]):
            w[i, j] += np.exp(-near[i, col] / sig2)
    p = w / w.sum(axis=1, keepdims=True)
    m = np.eye(n) - z * p
    label = np.arange(n)
    for i in range(n):  # join i with its nearest neighbour
        label[label == label[order[i, 0]]] = label[i]
    clusters = [np.flatnonzero(label == c) for c in np.unique(label)]

    def s(c: np.ndarray) -> float:
        return float(np.linalg.inv(m[np.ix_(c, c)]).sum()) / len(c) ** 2

    def s_cond(c: np.ndarray, union: np.ndarray) -> float:
        inv = np.linalg.inv(m[np.ix_(union, union)])
        inside = np.isin(union, c)
        return float(inv[np.ix_(inside, inside)].sum()) / len(c) ** 2

    while len(clusters) > k:
        best, pair = -np.inf, (0, 0)
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                u = np.concatenate([clusters[i], clusters[j]])
                gain = s_cond(clusters[i], u) - s(clusters[i])
                gain += s_cond(clusters[j], u) - s(clusters[j])
                if gain > best:
                    best, pair = gain, (i, j)
        assert best > 1e-9 * s(clusters[pair[0]]), "a tie at 0: choose settings without one"
        i, j = pair
        clusters[i] = np.concatenate([clusters[i], clusters.pop(j)])
    out = np.empty(n, dtype=np.int64)
    for c, members in enumerate(clusters):
        out[members] = c
    return out


def three_moons(seed: int, n: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """Three noisy arcs (not linearly separable), plus a few scattered points."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    y = np.arange(n) % 3
    x = np.c_[np.cos(t) + 1.2 * y, np.sin(t) * (1 - 2 * (y == 1)) + 0.3 * y]
    return x + rng.normal(scale=0.12, size=x.shape), y


@pytest.mark.parametrize(
    ("seed", "k", "n_neighbors", "z"), [(0, 3, 10, 0.01), (1, 4, 8, 0.1), (2, 3, 10, 0.5)]
)
def test_matches_the_naive_dense_algorithm(seed: int, k: int, n_neighbors: int, z: float) -> None:
    x, _ = three_moons(seed)
    ours = acpic_labels(x, k, n_neighbors=n_neighbors, z=z)
    ref = naive_acpic(x, k, n_neighbors, 1.0, z)
    assert len(np.unique(ours)) == k
    assert adjusted_rand_score(ref, ours) == 1.0


def test_graph_is_a_random_walk_with_the_reference_weights() -> None:
    x, _ = three_moons(3, n=40)
    p, nearest = path_integral_graph(x, n_neighbors=4, a=2.0)
    dense = p.toarray()
    np.testing.assert_allclose(dense.sum(axis=1), 1.0, rtol=1e-12)
    d2 = cdist(x, x, "sqeuclidean")
    np.fill_diagonal(d2, np.inf)
    np.testing.assert_array_equal(nearest, d2.argmin(axis=1))
    assert ((dense > 0).sum(axis=1) == 5).all()  # 4 neighbours and the self-loop
    # weights relative to the self-loop's 1: exp(-d² / σ²), σ² = 2 x mean 4-NN distance²
    sig2 = 2.0 * np.sort(d2, axis=1)[:, :4].mean()
    i, j = 0, int(nearest[0])
    np.testing.assert_allclose(dense[i, j] / dense[i, i], np.exp(-d2[i, j] / sig2), rtol=1e-10)


def test_arcs_are_recovered_where_kmeans_fails() -> None:
    x, y = three_moons(4, n=300)
    labels = ACPICClusterer(n_clusters=3, n_neighbors=10).fit_predict(x)
    kmeans = make_clusterer("kmeans", n_clusters=3).fit_predict(x)
    # measured: AC-PIC 0.942, k-means 0.568 (spectral clustering of the 10-NN graph 0.953)
    assert normalized_mutual_info_score(y, labels) > 0.9
    assert normalized_mutual_info_score(y, kmeans) < 0.7


def test_separate_graph_components_still_give_n_clusters() -> None:
    """Four tight far-apart groups and 2-NN edges: no edge joins the groups, so the last
    merges go by the closest centroids (groups 0+1 and 2+3 are the near ones)."""
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [100, 0], [110, 0]], dtype=float)
    x = np.repeat(centres, 6, axis=0) + rng.normal(scale=0.1, size=(24, 2))
    labels = acpic_labels(x, 2, n_neighbors=2)
    assert len(np.unique(labels)) == 2
    assert len(np.unique(labels[:12])) == 1 and len(np.unique(labels[12:])) == 1


def test_fewer_nearest_neighbour_groups_than_clusters_starts_from_samples() -> None:
    x = np.array([[0.0], [0.1], [5.0], [5.1], [9.0], [9.2]])  # 3 nearest-neighbour pairs
    labels = acpic_labels(x, 4, n_neighbors=2)
    assert len(np.unique(labels)) == 4


def test_duplicate_points_give_finite_weights() -> None:
    x = np.r_[np.zeros((10, 3)), np.ones((10, 3))]
    labels = acpic_labels(x, 2, n_neighbors=3)
    assert adjusted_rand_score(np.repeat([0, 1], 10), labels) == 1.0


def test_bad_parameters_name_the_parameter() -> None:
    with pytest.raises(ValueError, match=r"z must be in \(0, 1\) \(a walk discount\), got 1.0"):
        ACPICClusterer(z=1.0)
    with pytest.raises(ValueError, match=r"z must be > 0, got 0"):
        ACPICClusterer(z=0)
    with pytest.raises(ValueError, match=r"a must be > 0, got -1"):
        ACPICClusterer(a=-1)
    with pytest.raises(ValueError, match=r"n_neighbors must be >= 1, got 0"):
        ACPICClusterer(n_neighbors=0)
    x = np.random.default_rng(0).normal(size=(15, 2))
    with pytest.raises(
        ValueError, match=r"n_neighbors must be < the number of samples \(15\), got 20"
    ):
        ACPICClusterer(n_clusters=2).fit(x)


def test_depict_acpic_start() -> None:
    x, _ = three_moons(5, n=150)
    spec = "depict(pretrain_epochs=3, init_epochs=1, epochs=2, batch_size=25, hidden=32, dim=2, "
    spec += "init=acpic)"
    model = make_clusterer(spec, n_clusters=3, seed=0)
    model.fit(x)
    start = model.start_labels_  # type: ignore[attr-defined]
    assert start is not None and len(np.unique(start)) == 3
    assert model.init_neighbors == 20  # type: ignore[attr-defined]


def test_an_outlying_small_component_is_absorbed_not_two_large_ones_merged() -> None:
    """Two large groups and a small far one, no edge between them: the small group joins
    its nearest cluster (merging the two closest centroids would join the large groups)."""
    rng = np.random.default_rng(1)
    x = np.r_[
        rng.normal(size=(30, 2)) * 0.3, rng.normal(size=(30, 2)) * 0.3 + [10, 0], [[100, 0]] * 6
    ] + rng.normal(scale=0.01, size=(66, 2))
    labels = acpic_labels(x, 2, n_neighbors=5)
    assert len(np.unique(labels[:30])) == 1 and len(np.unique(labels[30:])) == 1
    assert labels[0] != labels[30]


@pytest.mark.parametrize("z", [0.01, 0.3])
def test_path_integrals_small_and_large_sets_match_dense_inverses(z: float) -> None:
    """Sets under and over the dense-solve size (192): the Neumann series on the sparse
    restriction and the dense solve both equal explicit inverses."""
    x, _ = three_moons(6, n=420)
    p, _ = path_integral_graph(x, n_neighbors=8)
    paths = _PathIntegrals(p, z)
    m = np.eye(420) - z * p.toarray()
    order = np.random.default_rng(0).permutation(420)
    for first, second in ((order[:60], order[60:150]), (order[:250], order[250:400])):
        u = np.concatenate([first, second])
        inv = np.linalg.inv(m[np.ix_(u, u)])
        na = len(first)
        want = inv[:na, :na].sum() / na**2 + inv[na:, na:].sum() / len(second) ** 2
        np.testing.assert_allclose(paths.conditional(first, second), want, rtol=1e-12)
        own = np.linalg.inv(m[np.ix_(first, first)]).sum() / na**2
        np.testing.assert_allclose(paths.of(first), own, rtol=1e-12)
