"""Binary with asymmetric scoring: the query against +-1 sign codes, as a float query (LUT
scan kernel, ``query_bits=0``) or as a ``query_bits``-bit quantised query (bit-plane kernel)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedlab.index import index_factory, load_index
from embedlab.index._scan import scan_lut, sign_tables
from embedlab.index.binary import DEFAULT_QUERY_BITS, Binary, pack_signs
from embedlab.index.io import data_folder


def naive_scores(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``q . s`` with ``s = 2 * bits - 1``, a plain float64 loop over dimensions."""
    signs = np.where(x > 0, 1.0, -1.0)
    out = np.zeros((q.shape[0], x.shape[0]))
    for j in range(q.shape[1]):
        out += q[:, j, None].astype(np.float64) * signs[None, :, j]
    return out


def normalised(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("metric", ["cos", "ip", "l2"])
@pytest.mark.parametrize("dim", [64, 100, 384])
def test_asym_scores_equal_a_naive_loop(seed: int, metric: str, dim: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((500, dim)).astype(np.float32)
    q = rng.standard_normal((7, dim)).astype(np.float32)
    index = Binary(dim, metric=metric, query_bits=0)  # type: ignore[arg-type]
    index.add(x)
    scores, ids = index.search(q, 500)
    qq = normalised(q) if metric == "cos" else q
    ref = naive_scores(qq, x)
    np.testing.assert_allclose(scores, np.take_along_axis(ref, ids, 1), rtol=1e-5, atol=1e-5)
    # every vector once, best first, ties (equal float32 scores) by lower id
    assert (np.sort(ids, axis=1) == np.arange(500)).all()
    order = np.lexsort((ids, -scores), axis=-1)
    np.testing.assert_array_equal(order, np.broadcast_to(np.arange(500), order.shape))


@pytest.mark.parametrize("seed", [0, 1])
def test_asym_top_k_is_the_naive_top_k(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3000, 128)).astype(np.float32)
    q = rng.standard_normal((40, 128)).astype(np.float32)
    index = Binary(128, metric="ip", query_bits=0)
    index.add(x)
    scores, ids = index.search(q, 10)
    ref = naive_scores(q, x)
    top = np.sort(ref, axis=1)[:, ::-1][:, :10]
    np.testing.assert_allclose(scores, top, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(ref, ids, 1), top, rtol=1e-5, atol=1e-5)


def test_hamming_scoring_keeps_the_old_results() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 100)).astype(np.float32)
    q = rng.standard_normal((10, 100)).astype(np.float32)
    index = index_factory(100, "Binary(scoring=hamming)")
    assert isinstance(index, Binary) and index.scoring == "hamming"
    index.add(x)
    scores, ids = index.search(q, 300)
    ham = ((q[:, None, :] > 0) != (x[None, :, :] > 0)).sum(-1)
    np.testing.assert_array_equal(-scores, np.take_along_axis(ham, ids, axis=1))
    order = np.lexsort((ids, -scores), axis=-1)
    np.testing.assert_array_equal(order, np.broadcast_to(np.arange(300), order.shape))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_asym_ranks_better_than_hamming_on_clustered_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, 64))
    x = (centres[rng.integers(0, 30, 3000)] + 0.5 * rng.standard_normal((3000, 64))).astype(
        np.float32
    )
    q = (centres[rng.integers(0, 30, 100)] + 0.5 * rng.standard_normal((100, 64))).astype(
        np.float32
    )
    truth = np.argsort(-(normalised(q) @ normalised(x).T), axis=1)[:, :10]

    def recall(spec: str) -> float:
        index = index_factory(64, spec)
        index.add(x)
        ids = index.search(q, 10)[1]
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)]))

    asym, ham = recall("Binary"), recall("Binary(scoring=hamming)")
    assert asym > ham  # recall@10 measured 0.311 / 0.313 / 0.301 against 0.280 / 0.268 / 0.248


def test_spec_scoring_round_trip_and_default() -> None:
    assert Binary(8).spec() == "Binary" and Binary(8).scoring == "asym"
    assert Binary(8).query_bits == DEFAULT_QUERY_BITS
    assert index_factory(8, "Binary(query_bits=0)").spec() == "Binary(query_bits=0)"
    with pytest.raises(ValueError, match=r"query_bits must be <= 8 .*got 9"):
        Binary(8, query_bits=9)
    with pytest.raises(ValueError, match=r"query_bits must be >= 0, got -1"):
        Binary(8, query_bits=-1)
    spec = "Binary(scoring=hamming),Rerank(Flat,k_factor=3)"
    assert index_factory(8, spec).spec() == spec
    with pytest.raises(ValueError, match=r"scoring must be one of asym, hamming; got 'cosine'"):
        Binary(8, scoring="cosine")  # type: ignore[arg-type]


@pytest.mark.parametrize("scoring", ["asym", "hamming"])
def test_scoring_is_saved(tmp_path: Path, scoring: str) -> None:
    x = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    index = Binary(16, scoring=scoring)  # type: ignore[arg-type]
    index.add(x)
    index.save(tmp_path / "ix")
    loaded = load_index(tmp_path / "ix")
    assert isinstance(loaded, Binary) and loaded.scoring == scoring
    np.testing.assert_array_equal(loaded.search(x[:5], 7)[1], index.search(x[:5], 7)[1])


def test_indexes_saved_without_scoring_load_as_hamming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    index = Binary(16, scoring="hamming")
    index.add(x)
    # what older versions wrote: no "scoring" in meta
    monkeypatch.setattr(Binary, "_state", lambda self: ({"codes": self._codes}, {}))
    index.save(tmp_path / "ix")
    monkeypatch.undo()
    meta = json.loads((data_folder(tmp_path / "ix") / "index.json").read_text())["meta"]
    assert "scoring" not in meta
    loaded = load_index(tmp_path / "ix")
    assert isinstance(loaded, Binary) and loaded.scoring == "hamming"
    np.testing.assert_array_equal(loaded.search(x[:5], 7)[1], index.search(x[:5], 7)[1])


def test_kernel_keeps_k_best_with_row_ties_and_padding() -> None:
    # four codes, two pairs with equal scores: ties go to the lower row
    q = np.ones((1, 8), np.float32)
    x = np.array([[-1] * 8, [1] * 8, [-1] * 8, [1] * 8], np.float32)
    codes = np.zeros((4, 4), np.uint8)
    codes[:, :1] = pack_signs(x).view(np.uint8)[:, :1]
    one = (np.zeros(1, np.int64), np.full(1, 4, np.int64))
    probes, bias = np.zeros((1, 1), np.int64), np.zeros((1, 1), np.float32)
    s, r = scan_lut(sign_tables(q, 1), codes, *one, probes, bias, 3)
    assert r.tolist() == [[1, 3, 0]] and s.tolist() == [[8.0, 8.0, -8.0]]
    s, r = scan_lut(sign_tables(q, 1), codes, *one, probes, bias, 6)
    assert r.tolist() == [[1, 3, 0, 2, -1, -1]]
    assert np.isneginf(s[0, 4:]).all()


def dequantised(q: np.ndarray, bits: int) -> np.ndarray:
    """The query the bit-plane kernel scores: ``lo + delta * round((q - lo) / delta)``."""
    q = q.astype(np.float64)
    lo, hi = q.min(axis=1, keepdims=True), q.max(axis=1, keepdims=True)
    delta = (hi - lo) / (2**bits - 1)
    return lo + delta * np.clip(np.rint((q - lo) / delta), 0, 2**bits - 1)


@pytest.mark.parametrize("bits", [1, DEFAULT_QUERY_BITS, 8])
@pytest.mark.parametrize("dim", [7, 100, 384])
def test_quantised_query_scores_equal_a_naive_loop(bits: int, dim: int) -> None:
    rng = np.random.default_rng(bits * 1000 + dim)
    x = rng.standard_normal((300, dim)).astype(np.float32)
    q = rng.standard_normal((6, dim)).astype(np.float32)
    index = Binary(dim, metric="ip", query_bits=bits)
    index.add(x)
    scores, ids = index.search(q, 300)
    qhat = dequantised(q, bits)
    ref = naive_scores(qhat, x)
    np.testing.assert_allclose(scores, np.take_along_axis(ref, ids, 1), rtol=1e-5, atol=2e-4)
    assert (np.sort(ids, axis=1) == np.arange(300)).all()
    # the quantisation error is bounded: |q . s - q^ . s| <= sum_i |q_i - q^_i| <= dim delta / 2
    exact = naive_scores(q, x)
    bound = np.abs(q - qhat).sum(axis=1, keepdims=True)
    assert (np.abs(exact - ref) <= bound + 1e-4).all()
    assert (bound[:, 0] <= dim * (q.max(1) - q.min(1)) / (2**bits - 1) / 2 + 1e-4).all()


def test_quantised_query_ranks_as_the_naive_top_k_with_row_ties() -> None:
    q = np.ones((1, 8), np.float32)
    x = np.array([[-1] * 8, [1] * 8, [-1] * 8, [1] * 8], np.float32)
    index = Binary(8, metric="ip")
    index.add(x)
    s, r = index.search(q, 3)
    assert r.tolist() == [[1, 3, 0]] and s.tolist() == [[8.0, 8.0, -8.0]]
    s, r = index.search(q, 6)
    assert r.tolist() == [[1, 3, 0, 2, -1, -1]] and np.isneginf(s[0, 4:]).all()


def test_quantised_query_top_k_matches_the_exact_one_closely() -> None:
    # clustered data: the default precision finds nearly the float query's top 10
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((20, 128))
    x = (centres[rng.integers(0, 20, 4000)] + 0.7 * rng.standard_normal((4000, 128))).astype(
        np.float32
    )
    q = (centres[rng.integers(0, 20, 50)] + 0.7 * rng.standard_normal((50, 128))).astype(np.float32)
    found = {}
    for bits in (0, DEFAULT_QUERY_BITS):
        index = Binary(128, query_bits=bits)
        index.add(x)
        found[bits] = index.search(q, 10)[1]
    overlap = np.mean(
        [
            len(set(a) & set(b)) / 10
            for a, b in zip(found[0], found[DEFAULT_QUERY_BITS], strict=True)
        ]
    )
    assert overlap >= 0.9  # measured 0.966 (4 bits: 0.876, 8 bits: 0.992)


def test_query_bits_saved_and_old_indexes_load_with_float_queries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    index = Binary(16, query_bits=3)
    index.add(x)
    index.save(tmp_path / "ix")
    loaded = load_index(tmp_path / "ix")
    assert isinstance(loaded, Binary) and loaded.query_bits == 3
    np.testing.assert_array_equal(loaded.search(x[:5], 7)[1], index.search(x[:5], 7)[1])
    # what versions before query_bits wrote: scoring, no query_bits -> exact float queries
    monkeypatch.setattr(
        Binary, "_state", lambda self: ({"codes": self._codes}, {"scoring": "asym"})
    )
    index.save(tmp_path / "old")
    monkeypatch.undo()
    old = load_index(tmp_path / "old")
    assert isinstance(old, Binary) and old.query_bits == 0


def test_kernel_compiles_in_memory_when_the_cache_folder_is_not_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedlab.index import _bitplane

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("EMBEDLAB_CACHE", str(blocker))
    monkeypatch.setattr(_bitplane, "_KERNELS", {})
    x = np.random.default_rng(0).standard_normal((70, 5)).astype(np.float32)
    s, r = _bitplane.bitplane_search(x[:3], pack_signs(x), 4, 2)
    ref = naive_scores(dequantised(x[:3], 2), x)
    np.testing.assert_allclose(s, np.take_along_axis(ref, r, 1), rtol=1e-5, atol=1e-5)
    assert blocker.read_text() == "a file where the cache folder would go"  # left alone
