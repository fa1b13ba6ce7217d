"""DEPICT's reference-like options: early stopping with the best weights kept, the
agglomerative start against a naive Ward loop, the per-batch target, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import normalized_mutual_info_score
from torch import nn

from embedlab.bench.cluster import make_blobs
from embedlab.cluster import make_clusterer
from embedlab.cluster._depict_init import agglomerative_labels, cluster_means, start_clustering
from embedlab.cluster._depict_train import EarlyStopping, clean_recon_loss


def spec(**kw: object) -> str:
    """A small DEPICT spec: the conformance suite's settings, overridden by ``kw``."""
    args = {"pretrain_epochs": 4, "init_epochs": 1, "epochs": 3, "batch_size": 50, "hidden": 64}
    args |= kw
    return "depict(" + ", ".join(f"{k}={v}" for k, v in args.items()) + ")"


STOPPING = spec(lr=0.05, val_fraction=0.2, pretrain_epochs=40, pretrain_patience=1)
HEAD = spec(
    val_fraction=0.2, init_epochs=30, init_patience=2, init="agglomerative", target_update="batch"
)


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    data = make_blobs(n_samples=150, n_clusters=3, dim=5, seed=1)
    return data.x, data.y


def test_early_stopping_stops_after_patience_and_restores_the_best() -> None:
    lin = nn.Linear(2, 1)
    stopper = EarlyStopping([lin], patience=2, mode="min")
    losses = [3.0, 2.0, 2.5, 2.0, 2.1, 1.0]  # best at step 1; 2.0 again is no improvement
    stops = []
    for i, loss in enumerate(losses):
        with torch.no_grad():
            lin.weight.fill_(float(i))
        stops.append(stopper.step(loss))
    # more than 2 checks since the best (steps 2, 3, 4): stop at step 4, not before
    assert stops[:5] == [False, False, False, False, True]
    assert stopper.best_value == 1.0  # a later improvement still counts if checked
    stopper = EarlyStopping([lin], patience=2, mode="max")
    for i, score in enumerate([0.1, 0.5, 0.4, 0.5, 0.3]):
        with torch.no_grad():
            lin.weight.fill_(float(i))
        stop = stopper.step(score)
    assert stop and stopper.best_value == 0.5
    stopper.restore()
    assert float(lin.weight.detach()[0, 0]) == 1.0  # the weights of step 1
    never = EarlyStopping([lin], patience=None)
    assert not any(never.step(v) for v in [1.0, 2.0, 3.0, 4.0, 5.0])


def test_pretraining_stops_when_the_validation_loss_stops_improving(
    blobs: tuple[np.ndarray, np.ndarray],
) -> None:
    """A large step size makes the validation loss wander: the phase stops ``patience + 1``
    epochs after its best epoch (or at the cap) and keeps that epoch's weights."""
    x, _ = blobs
    m = make_clusterer(STOPPING, n_clusters=3)
    m._fit_head = lambda *a, **k: None  # type: ignore[attr-defined]
    m._depict_phase = lambda *a, **k: np.zeros(len(x), dtype=np.int64)  # type: ignore[attr-defined]
    m.fit(x)
    hist = m.history_["pretrain_val"]  # type: ignore[attr-defined]
    best = int(np.argmin(hist))
    assert len(hist) < 40, hist  # stopped before the cap
    assert len(hist) == best + 1 + 2, hist
    assert min(hist[best + 1 :]) >= hist[best]
    data = m._prepare(x)  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    val = np.sort(rng.permutation(len(x))[:30])
    assert clean_recon_loss(m.net_, data[val]) == pytest.approx(hist[best], rel=1e-5)  # type: ignore[attr-defined]


def test_head_fit_early_stopping_and_batch_targets(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = blobs
    model = make_clusterer(HEAD, n_clusters=3, seed=1)
    labels = model.fit_predict(x)
    hist = model.history_["init_val_nmi"]  # type: ignore[attr-defined]
    assert 3 <= len(hist) <= 31  # the start's NMI, then one per epoch
    assert normalized_mutual_info_score(y, labels) > 0.99


def test_without_a_split_every_epoch_runs(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = blobs
    model = make_clusterer(spec(val_fraction=0), n_clusters=3)
    labels = model.fit_predict(x)
    hist = model.history_  # type: ignore[attr-defined]
    assert hist["pretrain_val"] == [] and hist["init_val_nmi"] == []  # the patience is unused
    assert normalized_mutual_info_score(y, labels) > 0.99


def naive_ward(x: np.ndarray, n_clusters: int, n_neighbors: int) -> np.ndarray:
    """Greedy Ward merging by brute force: among clusters joined by an edge of the
    symmetrised k-NN graph, merge the pair of least SSE increase |A||B|/(|A|+|B|) |mA-mB|²."""
    n = len(x)
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    adj = np.zeros((n, n), dtype=bool)
    for i in range(n):
        adj[i, np.argsort(d[i])[:n_neighbors]] = True
    adj |= adj.T
    clusters = [[i] for i in range(n)]
    while len(clusters) > n_clusters:
        best, pair = np.inf, (0, 0)
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                if not adj[np.ix_(clusters[a], clusters[b])].any():
                    continue
                na, nb = len(clusters[a]), len(clusters[b])
                gap = x[clusters[a]].mean(0) - x[clusters[b]].mean(0)
                cost = na * nb / (na + nb) * float(gap @ gap)
                if cost < best:
                    best, pair = cost, (a, b)
        a, b = pair
        clusters[a] = clusters[a] + clusters.pop(b)
    labels = np.empty(n, dtype=np.int64)
    for c, members in enumerate(clusters):
        labels[members] = c
    return labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agglomerative_start_matches_a_naive_ward_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 3))  # one cloud: its 6-NN graph is connected
    got = agglomerative_labels(x, 4, n_neighbors=6)
    want = naive_ward(x, 4, 6)
    assert normalized_mutual_info_score(want, got) == pytest.approx(1.0)
    labels, means = start_clustering(
        x.astype(np.float32), 4, method="agglomerative", seed=0, n_neighbors=6
    )
    np.testing.assert_array_equal(labels, got)
    for c in range(4):
        np.testing.assert_allclose(means[c], x[labels == c].mean(0), rtol=1e-5, atol=1e-6)


def test_cluster_means_of_an_empty_cluster_are_zero() -> None:
    emb = np.arange(6, dtype=np.float32).reshape(3, 2)
    means = cluster_means(emb, np.array([0, 0, 2]), 3)
    np.testing.assert_allclose(means, [[1.0, 2.0], [0.0, 0.0], [4.0, 5.0]])


def test_reference_options_errors() -> None:
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\), got 1.5"):
        make_clusterer("depict(val_fraction=1.5)", n_clusters=3)
    with pytest.raises(ValueError, match=r"target_update must be one of batch, epoch; got 'step'"):
        make_clusterer("depict(target_update=step)", n_clusters=3)
    x = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(
        ValueError,
        match=r"val_fraction must leave >= 1 validation sample and "
        r">= batch_size \(20\) training samples of 40, got 0.6",
    ):
        make_clusterer("depict(val_fraction=0.6, batch_size=20)", n_clusters=3).fit(x)
