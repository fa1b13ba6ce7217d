"""Binary with asymmetric scoring: float query against +-1 sign codes (LUT scan kernel)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedlab.index import index_factory, load_index
from embedlab.index._scan import scan_lut, sign_tables
from embedlab.index.binary import Binary, pack_signs
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
    index = Binary(dim, metric=metric)  # type: ignore[arg-type]
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
    index = Binary(128, metric="ip")
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
