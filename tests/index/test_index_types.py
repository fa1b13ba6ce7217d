"""Index types against numpy references, and the bad-input errors of the protocol."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.index import Binary, Flat, Int8, Matryoshka, Rerank, index_factory
from embedlab.index._base import IdMap, topk_rows
from embedlab.index.binary import pack_signs


def brute_force(x: np.ndarray, q: np.ndarray, metric: str, k: int) -> np.ndarray:
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    if metric == "cos":
        x64 /= np.linalg.norm(x64, axis=1, keepdims=True)
        q64 /= np.linalg.norm(q64, axis=1, keepdims=True)
    s = -((q64[:, None, :] - x64[None, :, :]) ** 2).sum(-1) if metric == "l2" else q64 @ x64.T
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("metric", ["ip", "l2", "cos"])
def test_flat_equals_numpy_brute_force(metric: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((700, 24)).astype(np.float32)
    q = rng.standard_normal((40, 24)).astype(np.float32)
    index = Flat(24, metric=metric)  # type: ignore[arg-type]
    index.add(x)
    scores, ids = index.search(q, 15)
    np.testing.assert_array_equal(ids, brute_force(x, q, metric, 15))
    if metric == "l2":
        ref = -((q[:, None, :] - x[ids]) ** 2).sum(-1)
        np.testing.assert_allclose(scores, ref, rtol=1e-4, atol=1e-4)


def test_flat_blocked_search_matches_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((500, 16)).astype(np.float32)
    q = rng.standard_normal((50, 16)).astype(np.float32)
    index = Flat(16, metric="ip")
    index.add(x)
    ref = index.search(q, 7)
    monkeypatch.setattr("embedlab.index.flat._BLOCK", 600)  # one query per block
    got = index.search(q, 7)
    np.testing.assert_array_equal(ref[1], got[1])


def test_int8_codes_use_one_byte_per_dim_and_track_calibration() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 3, (400, 32)).astype(np.float32)
    index = Int8(32, metric="ip")
    index.train(x)
    index.add(x)
    assert index.codes.dtype == np.uint8 and index.codes.shape == (400, 32)
    err = np.abs(index.decode(index.codes) - x).max()
    assert err <= (5.0 / 255) / 2 + 1e-5  # half a quantisation step
    # int8 scores equal dot products with the de-quantised vectors
    q = rng.standard_normal((5, 32)).astype(np.float32)
    scores, ids = index.search(q, 3)
    ref = np.einsum("qkd,qd->qk", index.decode(index.codes)[ids], q)
    np.testing.assert_allclose(scores, ref, rtol=1e-4, atol=1e-4)


def test_int8_percentile_calibration_clips_outliers() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 8)).astype(np.float32)
    x[0] = 1000.0
    mm = Int8(8, metric="ip", calibration="minmax")
    pc = Int8(8, metric="ip", calibration="percentile", percentile=99)
    mm.train(x)
    pc.train(x)
    assert (pc._scale < mm._scale / 50).all()


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_int8_l2_and_ip_close_to_flat(metric: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((600, 16)).astype(np.float32)
    q = rng.standard_normal((20, 16)).astype(np.float32)
    index = Int8(16, metric=metric)  # type: ignore[arg-type]
    index.train(x)
    index.add(x)
    _, ids = index.search(q, 1)
    assert (ids[:, 0] == brute_force(x, q, metric, 1)[:, 0]).mean() >= 0.9


def test_binary_hamming_matches_numpy_reference() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 100)).astype(np.float32)  # 100 bits -> 2 words, padded
    q = rng.standard_normal((10, 100)).astype(np.float32)
    index = Binary(100, scoring="hamming")
    index.add(x)
    scores, ids = index.search(q, 300)
    ham = ((q[:, None, :] > 0) != (x[None, :, :] > 0)).sum(-1)
    np.testing.assert_array_equal(-scores, np.take_along_axis(ham, ids, axis=1))
    # best first, ties by lower id
    order = np.lexsort((ids, -scores), axis=-1)
    np.testing.assert_array_equal(order, np.broadcast_to(np.arange(300), order.shape))


def test_binary_uses_48_bytes_per_vector_for_384_dims() -> None:
    x = np.random.default_rng(0).standard_normal((10, 384)).astype(np.float32)
    index = Binary(384)
    index.add(x)
    assert index.codes.dtype == np.uint64 and index.codes.nbytes == 10 * 48
    assert index.memory_bytes() == 10 * 48  # sequential ids are implicit
    other = Binary(384)
    other.add(x, ids=np.arange(100, 110))
    assert other.memory_bytes() == 10 * (48 + 8)  # codes + int64 ids the user chose
    assert pack_signs(x).shape == (10, 6)


def test_matryoshka_uses_prefix_then_full_vectors() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 32)).astype(np.float32)
    index = Matryoshka(32, metric="ip", d=8, k_factor=500)  # every vector is a candidate
    index.add(x)
    q = rng.standard_normal((10, 32)).astype(np.float32)
    np.testing.assert_array_equal(index.search(q, 5)[1], brute_force(x, q, "ip", 5))
    assert index.coarse.dim == 8 and index.coarse.ntotal == 500


def test_rerank_with_enough_candidates_is_exact() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 32)).astype(np.float32)
    q = rng.standard_normal((10, 32)).astype(np.float32)
    index = Rerank(32, metric="l2", base=Binary(32, metric="l2"), k_factor=40)
    index.add(x)
    np.testing.assert_array_equal(index.search(q, 10)[1], brute_force(x, q, "l2", 10))


def test_rerank_base_must_match() -> None:
    with pytest.raises(ValueError, match=r"base must have dim=8 and metric='cos', got dim=4"):
        Rerank(8, base=Flat(4))


def test_sequential_ids_continue_after_the_largest() -> None:
    index = Flat(4)
    x = np.ones((3, 4), np.float32)
    index.add(x, ids=np.array([10, 3, 7]))
    index.add(x)
    np.testing.assert_array_equal(index.ids, [10, 3, 7, 11, 12, 13])
    index.remove([13])
    index.add(x[:1])
    assert index.ids[-1] == 14


def test_remove_returns_count_and_deduplicates() -> None:
    index = Flat(4)
    index.add(np.eye(4, dtype=np.float32))
    assert index.remove(np.array([1, 1, 2])) == 2
    np.testing.assert_array_equal(index.ids, [0, 3])
    assert index.remove([]) == 0


def test_idmap_lookup() -> None:
    m = IdMap(np.array([5, 2, 9]))
    np.testing.assert_array_equal(m.lookup(np.array([[9, 4], [-1, 5]])), [[2, -1], [-1, 0]])
    m.delete(np.array([0]))
    np.testing.assert_array_equal(m.lookup(np.array([5, 2, 9])), [-1, 0, 1])


def test_topk_rows_orders_ties_by_position() -> None:
    s, p = topk_rows(np.array([[1.0, 3.0, 3.0, 0.0, 3.0]], np.float32), 2)
    np.testing.assert_array_equal(p, [[1, 2]])
    np.testing.assert_array_equal(s, [[3.0, 3.0]])


# ------------------------------------------------------------------- bad input
@pytest.fixture
def flat() -> Flat:
    index = Flat(8)
    index.add(np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32))
    return index


def test_dimension_mismatch(flat: Flat) -> None:
    with pytest.raises(ValueError, match=r"x must have dim=8 columns to match the index, got"):
        flat.add(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"queries must have dim=8 columns .* \(3, 4\)"):
        flat.search(np.zeros((3, 4), np.float32), 1)
    with pytest.raises(ValueError, match=r"queries must have shape \(n, 8\), got shape \(8,\)"):
        flat.search(np.zeros(8, np.float32), 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_rows_are_named(flat: Flat, bad: float) -> None:
    x = np.zeros((5, 8), np.float32)
    x[3, 2] = bad
    with pytest.raises(ValueError, match=r"x must be finite, got NaN or inf in row 3"):
        flat.add(x)
    with pytest.raises(ValueError, match=r"queries must be finite, got NaN or inf in row 3"):
        flat.search(x, 2)
    trained = Int8(8)
    with pytest.raises(ValueError, match=r"x must be finite, got NaN or inf in row 3"):
        trained.train(x)


def test_float64_overflow_is_rejected(flat: Flat) -> None:
    x = np.zeros((2, 8))
    x[1, 0] = 1e300
    with pytest.raises(ValueError, match=r"NaN or inf in row 1"):
        flat.add(x)


@pytest.mark.parametrize("k", [0, -3])
def test_k_must_be_positive(flat: Flat, k: int) -> None:
    with pytest.raises(ValueError, match=rf"k must be >= 1, got {k}"):
        flat.search(np.zeros((1, 8), np.float32), k)


def test_k_must_be_an_integer(flat: Flat) -> None:
    with pytest.raises(TypeError, match=r"k must be an integer, got 2.5"):
        flat.search(np.zeros((1, 8), np.float32), 2.5)  # type: ignore[arg-type]


def test_duplicate_ids(flat: Flat) -> None:
    x = np.ones((2, 8), np.float32)
    with pytest.raises(ValueError, match=r"ids must be unique, got id 4 more than once"):
        flat.add(x, ids=np.array([4, 4]))
    with pytest.raises(ValueError, match=r"got id 7 which is already in the index"):
        flat.add(x, ids=np.array([100, 7]))
    assert flat.ntotal == 20


def test_bad_ids(flat: Flat) -> None:
    x = np.ones((2, 8), np.float32)
    with pytest.raises(ValueError, match=r"ids must have shape \(2,\), got \(3,\)"):
        flat.add(x, ids=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"ids must be >= 0 \(-1 marks a missing result\), got -1"):
        flat.add(x, ids=np.array([100, -1]))
    with pytest.raises(TypeError, match=r"ids must hold integers, got dtype float64"):
        flat.add(x, ids=np.array([1.0, 2.0]))


def test_remove_unknown_ids_names_them(flat: Flat) -> None:
    with pytest.raises(ValueError, match=r"ids not in the index: 55, 99"):
        flat.remove([3, 99, 55])
    assert flat.ntotal == 20  # nothing removed


def test_training_needs_enough_vectors() -> None:
    with pytest.raises(ValueError, match=r"Int8 needs at least 1 training vectors, got 0"):
        Int8(8).train(np.zeros((0, 8), np.float32))


def test_add_before_train() -> None:
    with pytest.raises(ValueError, match=r"Int8 must be trained before add: call train"):
        Int8(8).add(np.zeros((2, 8), np.float32))
    rr = index_factory(8, "Int8,Rerank(Flat)")
    with pytest.raises(ValueError, match=r"must be trained before add"):
        rr.add(np.zeros((2, 8), np.float32))


def test_retraining_a_filled_index_is_refused() -> None:
    x = np.random.default_rng(0).standard_normal((10, 8)).astype(np.float32)
    index = Int8(8)
    index.train(x)
    index.add(x)
    with pytest.raises(ValueError, match=r"Int8 already holds 10 vectors; train a new index"):
        index.train(x)


def test_flat_train_is_a_no_op(flat: Flat) -> None:
    flat.train(np.zeros((0, 8), np.float32))
    assert flat.is_trained and flat.ntotal == 20
