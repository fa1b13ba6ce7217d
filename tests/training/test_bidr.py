"""BiDR trainer: shapes, codebook round trip, recall vs exact search, dense stage, errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest
import torch

from embedlab.index import load_index
from embedlab.index._base import l2_normalize
from embedlab.index.pq import PQ
from embedlab.training.bidr import BiDRModel, pseudo_queries, train_bidr


@pytest.fixture(scope="module", autouse=True)
def one_faiss_thread() -> Iterator[None]:
    """faiss' OpenMP k-means (and torch) thrash on a busy shared machine; one thread is fast."""
    before, before_torch = faiss.omp_get_max_threads(), torch.get_num_threads()
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)
    torch.set_num_threads(before_torch)


@pytest.fixture(scope="module")
def clustered() -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, 16))
    x = centres[rng.integers(0, 20, 600)] + 0.3 * rng.standard_normal((600, 16))
    return l2_normalize(x.astype(np.float32))


@pytest.fixture(scope="module")
def model(clustered: np.ndarray) -> BiDRModel:
    torch.manual_seed(0)
    rows, pos = pseudo_queries(clustered, n_queries=200, k=5)
    return train_bidr(
        clustered,
        clustered[rows],
        pos,
        query_rows=rows,
        m=4,
        nbits=4,
        pq_epochs=2,
        dense_epochs=1,
        k=5,
        k_factor=4,
        batch_size=100,
        n_random=64,
        n_hard=8,
    )


def exact_top(q: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """Naive float64 exact top-k by cosine."""
    s = q.astype(np.float64) @ x.astype(np.float64).T
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def test_pseudo_queries_match_naive_neighbours(clustered: np.ndarray) -> None:
    rows, pos = pseudo_queries(clustered, n_queries=30, k=4, seed=1)
    assert rows.shape == (30,) and pos.shape == (30, 4)
    for r, p in zip(rows, pos, strict=True):
        d = [(-float(clustered[r].astype(np.float64) @ clustered[j]), j) for j in range(600)]
        ref = [j for _, j in sorted(d) if j != r][:4]
        assert list(p) == ref


def test_shapes_and_history(model: BiDRModel) -> None:
    assert model.codebooks.shape == (4, 16, 4) and model.codebooks.dtype == np.float32
    assert model.projection.shape == (16, 16)
    assert (model.m, model.nbits, model.dim) == (4, 4, 16)
    assert len(model.history["pq"]) == 2 and len(model.history["dense"]) == 1
    assert np.isfinite(model.history["pq"]).all()


def test_codebooks_round_trip_through_pq_and_save(
    model: BiDRModel, clustered: np.ndarray, tmp_path: Path
) -> None:
    index = model.build_index(clustered, k_factor=4)
    assert isinstance(index.base, PQ)
    np.testing.assert_array_equal(index.base.codebooks, model.codebooks)
    # Codes are nearest centroids per sub-vector (naive check).
    recon = index.base.decode(index.base.encode(clustered[:20])).reshape(20, 4, 4)
    sub = clustered[:20].reshape(20, 4, 4)
    d = ((sub[:, :, None, :] - model.codebooks[None]) ** 2).sum(-1)
    nearest = model.codebooks[np.arange(4)[None], d.argmin(-1)]
    np.testing.assert_allclose(recon, nearest, rtol=1e-6)
    index.save(tmp_path / "idx")
    loaded = load_index(tmp_path / "idx")
    np.testing.assert_array_equal(
        loaded.search(clustered[:5], 3)[1], index.search(clustered[:5], 3)[1]
    )


def test_trained_index_recall_vs_exact(model: BiDRModel, clustered: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    q = l2_normalize(clustered[:50] + 0.05 * rng.standard_normal((50, 16)).astype(np.float32))
    identity = BiDRModel(model.codebooks, np.eye(16, dtype=np.float32), "cos")
    _, ids = identity.build_index(clustered, k_factor=10).search(q, 5)
    ex = exact_top(q, clustered, 5)
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(ids, ex, strict=True)])
    assert recall >= 0.9


def test_dense_stage_vectors_are_rescored(model: BiDRModel, clustered: np.ndarray) -> None:
    index = model.build_index(clustered, k_factor=1000)  # every row re-scored
    q = clustered[:3]
    scores, ids = index.search(q, 4)
    ref = q.astype(np.float64) @ model.rerank_vectors(clustered).astype(np.float64).T
    np.testing.assert_array_equal(ids, np.argsort(-ref, axis=1, kind="stable")[:, :4])
    np.testing.assert_allclose(scores, np.sort(ref, axis=1)[:, ::-1][:, :4], rtol=1e-5)


def test_zero_epochs_keeps_faiss_codebooks(clustered: np.ndarray) -> None:
    rows, pos = pseudo_queries(clustered, n_queries=20, k=3)
    m = train_bidr(clustered, clustered[rows], pos, m=4, nbits=4, pq_epochs=0)
    pq = PQ(16, m=4, nbits=4, seed=0)
    pq.train(clustered)
    np.testing.assert_array_equal(m.codebooks, pq.codebooks)
    np.testing.assert_array_equal(m.projection, np.eye(16, dtype=np.float32))


def test_errors(clustered: np.ndarray) -> None:
    q = clustered[:10]
    with pytest.raises(ValueError, match="positives"):
        train_bidr(clustered, q, np.zeros((9, 3), np.int64), m=4, nbits=4)
    with pytest.raises(ValueError, match="positives"):
        train_bidr(clustered, q, np.full((10, 3), 600), m=4, nbits=4)
    with pytest.raises(ValueError, match="dim must be divisible by m"):
        train_bidr(clustered, q, np.zeros((10, 3), np.int64), m=5, nbits=4)
    with pytest.raises(ValueError, match="queries"):
        train_bidr(clustered, q[:, :8], np.zeros((10, 3), np.int64), m=4, nbits=4)
    with pytest.raises(ValueError, match="temperature"):
        train_bidr(clustered, q, np.zeros((10, 3), np.int64), m=4, nbits=4, temperature=0.0)
    with pytest.raises(ValueError, match="n_queries"):
        pseudo_queries(clustered, n_queries=601)
    index = BiDRModel(np.zeros((4, 16, 4), np.float32), np.eye(16, dtype=np.float32)).build_index(
        clustered[:0]
    )
    with pytest.raises(ValueError, match="rescore must have one row per row of x"):
        index.add_rescored(clustered[:5], clustered[:4])
    pq = PQ(16, m=4, nbits=4)
    with pytest.raises(ValueError, match="codebooks must have shape"):
        pq.set_codebooks(np.zeros((4, 8, 4), np.float32))
    pq.set_codebooks(np.zeros((4, 16, 4), np.float32))
    pq.add(clustered[:5])
    with pytest.raises(ValueError, match="empty"):
        pq.set_codebooks(np.zeros((4, 16, 4), np.float32))
