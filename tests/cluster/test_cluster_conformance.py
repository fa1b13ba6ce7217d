"""Conformance over every registered clusterer: protocol, determinism, separable blobs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import normalized_mutual_info_score

from embedlab.bench.cluster import make_blobs
from embedlab.cluster import CLUSTERERS, Clusterer, make_clusterer

#: short settings for the methods that train (the defaults are sized for MNIST)
FAST = {
    "depict": "depict(pretrain_epochs=4, init_epochs=1, epochs=3, batch_size=25, hidden=64)",
    "mlc": "mlc(pretrain_epochs=4, epochs=3, batch_size=100, hidden=64, dim=8)",
}
NAMES = CLUSTERERS.names()
PREDICTS = {"kmeans", "depict", "ss_kmeans"}
SEMI = [n for n in NAMES if CLUSTERERS.get(n).semi_supervised]


def build(name: str, seed: int = 0, n_clusters: int = 3) -> Clusterer:
    return make_clusterer(FAST.get(name, name), n_clusters=n_clusters, seed=seed)


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    data = make_blobs(n_samples=150, n_clusters=3, dim=5, seed=1)
    return data.x, data.y


def test_registry_holds_the_issue_methods() -> None:
    assert {"kmeans", "depict", "mlc", "spectral", "ss_kmeans"} <= set(NAMES)
    assert SEMI == ["ss_kmeans"]


@pytest.mark.parametrize("name", SEMI)
def test_semi_supervised_keep_the_labels(name: str, blobs: tuple[np.ndarray, np.ndarray]) -> None:
    """Partial labels ``y`` (-1: unlabelled): labelled samples stay in their given cluster
    (here a permutation of the classes), the rest is recovered, the same seed repeats."""
    x, y = blobs
    given = np.where(np.arange(150) % 3 == 0, (y + 1) % 3, -1)
    model = build(name)
    labels = model.fit_predict(x, given)  # type: ignore[call-arg]
    assert labels.dtype == np.int64 and labels.shape == (150,)
    np.testing.assert_array_equal(labels[given >= 0], given[given >= 0])
    np.testing.assert_array_equal(labels, (y + 1) % 3)
    again = build(name).fit(x, given)  # type: ignore[call-arg]
    np.testing.assert_array_equal(again.labels_, labels)
    with pytest.raises(ValueError, match=r"y must be -1 \(unlabelled\) or a cluster in"):
        build(name).fit(x, np.full(150, 3))  # type: ignore[call-arg]


@pytest.mark.parametrize("name", NAMES)
def test_protocol_determinism_and_separable_blobs(
    name: str, blobs: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = blobs
    model = build(name)
    assert model.n_clusters == 3 and model.labels_ is None
    assert model.fit(x) is model
    labels = model.labels_
    assert labels is not None and labels.shape == (150,) and labels.dtype == np.int64
    assert labels.min() >= 0 and labels.max() < 3
    nmi = normalized_mutual_info_score(y, labels)
    assert nmi > 0.99, nmi
    again = build(name).fit_predict(x)  # same seed, same labels
    np.testing.assert_array_equal(again, labels)
    if name in PREDICTS:
        np.testing.assert_array_equal(model.predict(x), labels)
    else:
        with pytest.raises(NotImplementedError, match="does not predict new samples"):
            model.predict(x)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_names_the_parameter(name: str) -> None:
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=r"n_clusters must be >= 2, got 1"):
        build(name, n_clusters=1)
    with pytest.raises(
        ValueError, match=r"n_clusters must be <= 5 \(the number of samples\), got 6"
    ):
        build(name, n_clusters=6).fit(x[:5])
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(
        ValueError, match=r"X must be finite, got a non-finite value at index \(3, 1\)"
    ):
        build(name).fit(bad)
    with pytest.raises(ValueError, match=r"X must have shape \(n, dim\)"):
        build(name).fit(x[0])
    with pytest.raises(RuntimeError, match="is not fitted: call fit"):
        build(name).predict(x)


@pytest.mark.parametrize("name", ["depict", "mlc"])
def test_dataset_smaller_than_the_batch(name: str) -> None:
    x = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(
        ValueError, match=r"batch_size must be <= 40 \(the number of samples\), got 1000"
    ):
        make_clusterer(f"{name}(batch_size=1000)", n_clusters=3).fit(x)


def test_spec_errors() -> None:
    with pytest.raises(ValueError, match=r"clusterer must be one of acpic, depict, kmeans, mlc"):
        make_clusterer("kmaens", n_clusters=3)
    with pytest.raises(ValueError, match=r"unknown hyper-parameter 'epoch' for clusterer 'depict'"):
        make_clusterer("depict(epoch=3)", n_clusters=3)
    with pytest.raises(ValueError, match=r"unknown hyper-parameter 'seed' for clusterer 'kmeans'"):
        make_clusterer("kmeans(seed=3)", n_clusters=3)
    with pytest.raises(ValueError, match=r"target must be one of sqrt, square; got 'cube'"):
        make_clusterer("depict(target=cube)", n_clusters=3)
    with pytest.raises(
        ValueError, match=r"init must be one of acpic, agglomerative, kmeans, spectral;"
    ):
        make_clusterer("depict(init=pca)", n_clusters=3)
    with pytest.raises(ValueError, match=r"gamma must be > 0, got 0"):
        make_clusterer("mlc(gamma=0)", n_clusters=3)
    model = make_clusterer("depict(epochs=20, lr=0.0005)", n_clusters=4, seed=2)
    assert (model.epochs, model.lr, model.seed, model.n_clusters) == (20, 0.0005, 2, 4)  # type: ignore[attr-defined]


def test_depict_spectral_start(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = blobs
    model = make_clusterer(FAST["depict"][:-1] + ", init=spectral)", n_clusters=3, seed=1)
    assert normalized_mutual_info_score(y, model.fit_predict(x)) > 0.99


def test_kmeans_faiss_backend(blobs: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = blobs
    labels = make_clusterer("kmeans(backend=faiss)", n_clusters=3).fit_predict(x)
    assert normalized_mutual_info_score(y, labels) > 0.99


def test_depict_images_use_the_conv_network() -> None:
    rng = np.random.default_rng(0)
    x = np.zeros((40, 1, 12, 12), dtype=np.float32)
    x[:20, :, :6] = 1.0  # two kinds of image: top half or bottom half lit
    x[20:, :, 6:] = 1.0
    x += rng.uniform(0, 0.1, size=x.shape).astype(np.float32)
    model = make_clusterer(
        "depict(pretrain_epochs=3, init_epochs=1, epochs=2, batch_size=10)", n_clusters=2
    )
    labels = model.fit_predict(x)
    assert labels.shape == (40,)
    assert model.transform(x).shape == (40, 2)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"X must have samples of shape \(1, 12, 12\) as in fit"):
        model.predict(np.zeros((2, 1, 10, 10)))
