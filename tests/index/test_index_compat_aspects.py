"""CompatIndex (versioned indexes) and MultiAspectIndex: exactness, persistence, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from embedlab.index import Flat, load_index
from embedlab.index.aspects import MultiAspectIndex
from embedlab.index.compat import CompatIndex, bt2_transform, procrustes_transform
from embedlab.training.compat import BasisTransform, save_basis_transform


def rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q.astype(np.float32)


@pytest.fixture(scope="module")
def models() -> tuple[np.ndarray, np.ndarray]:
    """Old embeddings (500, 16) and new ones: a rotation into 24 dims plus noise."""
    rng = np.random.default_rng(0)
    old = rng.standard_normal((500, 16)).astype(np.float32)
    lift = rotation(24, 1)[:16]  # (16, 24), orthonormal rows
    new = old @ lift + 0.05 * rng.standard_normal((500, 24)).astype(np.float32)
    return old, new


def test_procrustes_recovers_an_orthogonal_map(models: tuple[np.ndarray, np.ndarray]) -> None:
    old, new = models
    m = procrustes_transform(new, old)
    assert m.shape == (24, 16)
    np.testing.assert_allclose(m.T @ m, np.eye(16), atol=1e-5)
    residual = np.linalg.norm(new @ m - old) / np.linalg.norm(old)
    assert residual < 0.1  # measured 0.05 (the noise level)


def test_compat_index_new_queries_find_old_gallery(
    models: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    old, new = models
    gallery = Flat(16, metric="cos")
    gallery.add(old[:400], ids=np.arange(1000, 1400))
    index = CompatIndex(gallery, procrustes_transform(new[:400], old[:400]))
    assert index.ntotal == 400 and index.dim == 24 and index.spec() == "CompatIndex(Flat)"
    _, ids = index.search(new[:400], k=1)
    assert (ids[:, 0] == np.arange(1000, 1400)).mean() > 0.99  # measured 1.000
    # Equals searching the old index with the mapped queries by hand.
    expected = gallery.search(new[400:] @ index.transform, k=5)
    got = index.search(new[400:], k=5)
    np.testing.assert_array_equal(got[1], expected[1])
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-5)
    assert index.remove([1000, 1001]) == 2 and index.ntotal == 398 == gallery.ntotal
    index.save(tmp_path / "compat")
    loaded = load_index(tmp_path / "compat")
    assert isinstance(loaded, CompatIndex)
    for a, b in zip(loaded.search(new[400:], k=5), index.search(new[400:], k=5), strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.ntotal == 398 and loaded.memory_bytes() == index.memory_bytes()


def test_bt2_transform_from_a_saved_basis(tmp_path: Path) -> None:
    bt = BasisTransform(6, seed=0)
    path = save_basis_transform(tmp_path / "bt.safetensors", bt, d_old=4)
    q = bt.matrix.detach().numpy()
    z = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    u = bt(torch.from_numpy(z)).detach().numpy()
    np.testing.assert_allclose(z @ bt2_transform(path), u[:, :4], atol=1e-5)
    np.testing.assert_allclose(u @ bt2_transform(path, queries_are="transformed"), u[:, :4])
    assert bt2_transform(path).shape == (6, 4) and np.allclose(q @ q.T, np.eye(6), atol=1e-5)
    with pytest.raises(ValueError, match=r"queries_are must be 'backbone' or 'transformed'"):
        bt2_transform(path, queries_are="new")


def test_compat_bad_input(models: tuple[np.ndarray, np.ndarray]) -> None:
    old, new = models
    with pytest.raises(ValueError, match=r"transform must have shape \(d_new, d_old=16\)"):
        CompatIndex(Flat(16), np.eye(24, 8))
    with pytest.raises(TypeError, match=r"old must be a VectorIndex"):
        CompatIndex("flat", np.eye(16))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"new must have at least d_old=16 dims"):
        procrustes_transform(old[:, :8], old)
    with pytest.raises(ValueError, match=r"old must have shape \(n=500, d_old\)"):
        procrustes_transform(new, old[:10])
    bad = new.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"new.*row 3"):
        procrustes_transform(bad, old)
    index = CompatIndex(Flat(16), np.eye(24, 16))
    with pytest.raises(ValueError, match=r"queries must have dim=24 columns"):
        index.search(old[:2], k=1)


@pytest.fixture(scope="module")
def docs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "title": rng.standard_normal((300, 8)).astype(np.float32),
        "body": rng.standard_normal((300, 12)).astype(np.float32),
    }


def naive_mix(docs: dict[str, np.ndarray], q: dict[str, np.ndarray], w: dict[str, float]):
    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    return sum(wt * unit(q[a]) @ unit(docs[a]).T for a, wt in w.items())


@pytest.mark.parametrize(
    "weights",
    [{"title": 1.0}, {"body": 1.0}, {"title": 0.3, "body": 0.7}, {"title": 2.0, "body": -1.0}],
)
def test_multi_aspect_scores_equal_a_naive_weighted_sum(
    docs: dict[str, np.ndarray], weights: dict[str, float]
) -> None:
    index = MultiAspectIndex({"title": 8, "body": 12})
    index.add(docs)
    rng = np.random.default_rng(4)
    q = {"title": rng.standard_normal((7, 8)), "body": rng.standard_normal((7, 12))}
    scores, ids = index.search(q, k=5, weights=weights)
    full = naive_mix(docs, q, weights)
    np.testing.assert_array_equal(ids, np.argsort(-full, axis=1)[:, :5])
    np.testing.assert_allclose(scores, np.take_along_axis(full, ids, 1), rtol=1e-4, atol=1e-5)


def test_multi_aspect_single_aspect_needs_only_that_query(docs: dict[str, np.ndarray]) -> None:
    index = MultiAspectIndex({"title": 8, "body": 12})
    index.add(docs, ids=np.arange(300) * 2)
    flat = Flat(8)
    flat.add(docs["title"], ids=np.arange(300) * 2)
    q = {"title": docs["title"][:4]}
    for a, b in zip(
        index.search(q, k=3, aspect="title"), flat.search(q["title"], k=3), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5)


def test_multi_aspect_persistence_and_compressed_inner(
    docs: dict[str, np.ndarray], tmp_path: Path
) -> None:
    index = MultiAspectIndex({"title": 8, "body": 12}, spec="Int8")
    index.train(docs)
    index.add(docs)
    q = {"title": docs["title"][:10], "body": docs["body"][:10]}
    _, ids = index.search(q, k=1)
    assert (ids[:, 0] == np.arange(10)).all()
    index.save(tmp_path / "aspects")
    loaded = load_index(tmp_path / "aspects")
    assert isinstance(loaded, MultiAspectIndex) and loaded.aspects == index.aspects
    for a, b in zip(loaded.search(q, k=4), index.search(q, k=4), strict=True):
        np.testing.assert_array_equal(a, b)


def test_multi_aspect_bad_input(docs: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match=r"spec must build an inner-product index"):
        MultiAspectIndex({"a": 8}, spec="Binary")
    with pytest.raises(ValueError, match=r"metric must be 'cos' or 'ip'"):
        MultiAspectIndex({"a": 8}, metric="l2")
    with pytest.raises(ValueError, match=r"aspects must be a non-empty"):
        MultiAspectIndex({})
    index = MultiAspectIndex({"title": 8, "body": 12})
    with pytest.raises(ValueError, match=r"missing \['body'\]"):
        index.add({"title": docs["title"]})
    with pytest.raises(ValueError, match=r"same number of rows"):
        index.add({"title": docs["title"], "body": docs["body"][:5]})
    with pytest.raises(ValueError, match=r"aspect must be one of \['body', 'title'\], got 'x'"):
        index.search({"title": docs["title"][:1]}, k=1, aspect="x")
    with pytest.raises(ValueError, match=r"weights must not all be 0"):
        index.search({"title": docs["title"][:1]}, k=1, weights={"title": 0.0})
    with pytest.raises(ValueError, match=r"give either aspect or weights"):
        index.search({"title": docs["title"][:1]}, k=1, weights={"title": 1.0}, aspect="title")
    _, ids = index.search({"title": docs["title"][:1]}, k=3, aspect="title")
    assert (ids == -1).all()  # empty index
