"""ITQ (iterative quantisation) and Binary(center=true): the equal-bits baselines of BEBR."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes

from embedlab.index import index_factory, load_index
from embedlab.index.binary import Binary
from embedlab.index.itq import ITQ, itq_rotation, pca_directions

DIM = 32


def offset_data(seed: int, n: int = 600, dim: int = DIM) -> np.ndarray:
    """Anisotropic Gaussian data in a random basis plus a large common offset."""
    rng = np.random.default_rng(seed)
    rot, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    x = (rng.standard_normal((n, dim)) / np.arange(1, dim + 1) ** 0.5) @ rot.T
    return (x + 2.0 * rng.standard_normal(dim)).astype(np.float32)


def naive_itq(v: np.ndarray, r0: np.ndarray, iterations: int) -> tuple[np.ndarray, list[float]]:
    """ITQ with scipy's orthogonal Procrustes and an element-by-element float64 loss."""
    r = r0.copy()

    def loss(rot: np.ndarray) -> float:
        vr = v @ rot
        total = 0.0
        for i in range(vr.shape[0]):
            for j in range(vr.shape[1]):
                b = 1.0 if vr[i, j] >= 0 else -1.0
                total += (b - vr[i, j]) ** 2
        return total

    losses = [loss(r)]
    for _ in range(iterations):
        b = np.where(v @ r >= 0, 1.0, -1.0)
        r, _scale = orthogonal_procrustes(v, b)  # argmin_R ||V R - B||, R orthogonal
        losses.append(loss(r))
    return r, losses


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_itq_rotation_matches_procrustes_and_loss_never_increases(seed: int) -> None:
    x = offset_data(seed, n=300).astype(np.float64)
    mu, w = pca_directions(x, 16)
    v = (x - mu) @ w
    r0, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((16, 16)))
    r, losses = itq_rotation(v, r0, 20)
    ref_r, ref_losses = naive_itq(v, r0, 20)
    np.testing.assert_allclose(r @ r.T, np.eye(16), atol=1e-10)  # orthogonal
    np.testing.assert_allclose(r, ref_r, atol=1e-8)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-10)
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(losses))
    assert losses[-1] < losses[0]  # it does learn something


def test_pca_directions_are_the_top_right_singular_vectors() -> None:
    x = offset_data(0).astype(np.float64)
    mu, w = pca_directions(x, 8)
    np.testing.assert_allclose(mu, x.sum(axis=0) / x.shape[0], atol=1e-12)
    _u, _s, vt = np.linalg.svd(x - x.sum(axis=0) / x.shape[0], full_matrices=False)
    # same directions up to sign, in the same order
    np.testing.assert_allclose(np.abs(w.T @ vt[:8].T), np.eye(8), atol=1e-6)


def test_index_codes_are_signs_of_the_rotated_projection() -> None:
    x = offset_data(1)
    index = ITQ(DIM, bits=24, metric="ip", iterations=10)
    index.train(x)
    index.add(x)
    proj = index.projection.astype(np.float64)
    np.testing.assert_allclose(proj.T @ proj, np.eye(24), atol=1e-5)  # W R: orthonormal columns
    bits = np.unpackbits(index.codes.view(np.uint8), axis=1, bitorder="little")[:, :24]
    expect = ((x.astype(np.float64) - index.mean) @ proj) > 0
    assert (bits.astype(bool) == expect).mean() > 0.999  # float32 rounding at 0 only
    assert index.train_losses[-1] <= index.train_losses[0]


def test_hamming_search_equals_a_naive_hamming_ranking() -> None:
    x = offset_data(2)
    q = offset_data(3, n=20)
    index = ITQ(DIM, bits=20, metric="ip", iterations=5)
    index.train(x)
    index.add(x)
    scores, ids = index.search(q, 600)
    cx = (x - index.mean) @ index.projection > 0
    cq = (q - index.mean) @ index.projection > 0
    ham = (cq[:, None, :] != cx[None, :, :]).sum(axis=2)
    np.testing.assert_array_equal(-scores, np.take_along_axis(ham, ids, 1))
    assert (np.diff(scores, axis=1) <= 0).all()


def test_asym_scores_are_projected_query_dot_signs() -> None:
    x = offset_data(4)
    q = offset_data(5, n=10)
    index = ITQ(DIM, bits=16, metric="ip", scoring="asym", iterations=5)
    index.train(x)
    index.add(x)
    scores, ids = index.search(q, 600)
    s = np.where((x - index.mean) @ index.projection > 0, 1.0, -1.0)
    ref = q.astype(np.float64) @ index.projection.astype(np.float64) @ s.T
    np.testing.assert_allclose(scores, np.take_along_axis(ref, ids, 1), rtol=1e-4, atol=1e-4)


def test_bits_above_dim_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"bits must be <= dim.*got bits=33"):
        index_factory(DIM, "ITQ33")
    with pytest.raises(ValueError, match="scoring"):
        index_factory(DIM, "ITQ8(scoring=cosine)")


def test_itq_save_load_and_spec(tmp_path: Path) -> None:
    x = offset_data(6)
    index = index_factory(DIM, "ITQ16(scoring=asym,iterations=7)")
    assert index.spec() == "ITQ16(scoring=asym,iterations=7)"
    index.train(x)
    index.add(x)
    index.save(tmp_path / "ix")
    loaded = load_index(tmp_path / "ix")
    assert isinstance(loaded, ITQ) and loaded.spec() == index.spec()
    np.testing.assert_array_equal(loaded.projection, index.projection)
    assert loaded.train_losses == pytest.approx(index.train_losses)
    assert not list((tmp_path / "ix").rglob("*.pkl"))


# --------------------------------------------------------------- Binary(center=true)
def test_centred_binary_codes_are_signs_of_x_minus_training_mean() -> None:
    x = offset_data(7)
    index = index_factory(DIM, "Binary(center=true,scoring=hamming)", metric="ip")
    assert isinstance(index, Binary) and not index.is_trained
    index.train(x)
    np.testing.assert_allclose(index.mean, x.astype(np.float64).mean(axis=0), atol=1e-6)
    index.add(x)
    bits = np.unpackbits(index.codes.view(np.uint8), axis=1, bitorder="little")[:, :DIM]
    np.testing.assert_array_equal(bits.astype(bool), x - index.mean > 0)
    # the offset makes plain signs nearly constant; centred signs split every coordinate
    assert (x > 0).mean(axis=0).min() < 0.05 or (x > 0).mean(axis=0).max() > 0.95
    assert 0.3 < bits.mean() < 0.7


def test_centred_binary_must_be_trained_and_round_trips(tmp_path: Path) -> None:
    x = offset_data(8)
    index = Binary(DIM, center=True)
    with pytest.raises(ValueError, match="must be trained"):
        index.add(x)
    index.train(x)
    index.add(x)
    with pytest.raises(ValueError, match="already holds"):
        index.train(x)
    index.save(tmp_path / "ix")
    loaded = load_index(tmp_path / "ix")
    assert loaded.spec() == "Binary(center=true)"
    np.testing.assert_array_equal(loaded.search(x[:5], 10)[1], index.search(x[:5], 10)[1])
    with pytest.raises(TypeError, match="center must be a bool"):
        Binary(DIM, center="yes")  # type: ignore[arg-type]


def test_centring_beats_plain_signs_on_offset_data() -> None:
    z = offset_data(9, n=1100)
    x, q = z[:1000], z[1000:]
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    truth = np.argsort(-(qn @ xn.T), axis=1)[:, :10]

    def recall(spec: str) -> float:
        index = index_factory(DIM, spec)
        index.train(x)
        index.add(x)
        ids = index.search(q, 10)[1]
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)]))

    plain = recall("Binary(scoring=hamming)")
    centred = recall("Binary(center=true,scoring=hamming)")
    itq = recall(f"ITQ{DIM}")
    assert centred > plain
    assert itq > plain


def test_bench_alias_resolves_to_the_itq_spec() -> None:
    from embedlab.bench.retrieval import resolve_method

    assert resolve_method("itq256") == "ITQ256"


def test_ivf_refuses_centred_binary_codes() -> None:
    with pytest.raises(ValueError, match="center must be false"):
        index_factory(DIM, "IVF8,Binary(center=true)")
