"""Degenerate inputs of the quantised indexes: Int8 trained without a range, BEBR zero vectors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from embedlab.index import Flat, Int8, load_index
from embedlab.index.bebr import BEBR

DIM = 64


def clustered(seed: int, n: int = 2000, n_q: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """40 Gaussian clusters with a decaying spectrum (the conformance suite's data)."""
    rng = np.random.default_rng(seed)
    scale = np.linspace(1.5, 0.3, DIM)
    centres = rng.standard_normal((40, DIM)) * scale
    x = centres[rng.integers(0, 40, n)] + 0.35 * rng.standard_normal((n, DIM)) * scale
    q = centres[rng.integers(0, 40, n_q)] + 0.35 * rng.standard_normal((n_q, DIM)) * scale
    return x.astype(np.float32), q.astype(np.float32)


def overlap_at(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def int8_after(train: np.ndarray, x: np.ndarray, metric: str) -> Int8:
    index = Int8(DIM, metric=metric)  # type: ignore[arg-type]
    index.train(train)
    index.add(x)
    return index


# ----------------------------------------------------------------------------- Int8


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("how", ["one vector", "constant rows"])
def test_int8_without_training_range_keeps_self_recall(seed: int, how: str) -> None:
    x, _ = clustered(seed)
    train = x[:1] if how == "one vector" else np.repeat(x[:1], 20, axis=0)
    n_train = 1 if how == "one vector" else 20
    for metric in ("cos", "l2"):
        with pytest.warns(
            UserWarning,
            match=rf"Int8: 64 of 64 dimensions have zero range in the training data "
            rf"\(1 distinct of {n_train} training vectors\)",
        ):
            index = int8_after(train, x, metric)
        _, ids = index.search(x, 1)
        # measured 1.000 for every seed and both metrics (0.005 under cos with the old scale 1)
        assert float((ids[:, 0] == np.arange(len(x))).mean()) >= 0.99


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_int8_ip_one_vector_agrees_with_flat(seed: int) -> None:
    x, q = clustered(seed)
    with pytest.warns(UserWarning, match=r"twice the largest training magnitude"):
        index = int8_after(x[:1], x, "ip")
    flat = Flat(DIM, metric="ip")
    flat.add(x)
    found = index.search(q, 10)[1]
    # measured 0.933 / 0.965 / 0.950 (seeds 0 / 1 / 2); 0.26 with the old scale 1;
    # Int8 trained on all of x: 0.983
    assert overlap_at(found, flat.search(q, 10)[1]) >= 0.88


def test_int8_cos_fallback_is_the_unit_range() -> None:
    x, _ = clustered(0)
    with pytest.warns(UserWarning, match=r"\[-1, 1\], the range of a unit vector's coordinates"):
        index = int8_after(x[:1], x, "cos")
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    err = np.abs(index.decode(index.encode(unit)) - unit).max()
    assert err <= 1.0 / 255 + 1e-6  # half a step of 2 / 255


def test_int8_constant_feature_uses_the_widest_other_range() -> None:
    x, q = clustered(0)
    x[:, 7] = 0.25
    with pytest.warns(UserWarning, match=r"Int8: 1 of 64 dimensions have zero range .*2000 dist"):
        index = int8_after(x, x, "ip")
    widest = float((x.max(0) - x.min(0)).max())
    assert index._scale[7] == pytest.approx(widest / 255, rel=1e-5)
    assert index._lo[7] == pytest.approx(0.25 - widest / 2, rel=1e-5)
    flat = Flat(DIM, metric="ip")
    flat.add(x)
    assert overlap_at(index.search(q, 10)[1], flat.search(q, 10)[1]) >= 0.95  # measured 0.990


def test_int8_percentile_keeps_min_max_where_percentiles_coincide() -> None:
    x, _ = clustered(0)
    x[:, 3] = 0.0
    x[:2, 3] = [-2.0, 3.0]  # a sparse feature: the 0.1 and 99.9 percentiles are both 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: min / max give a range
        index = Int8(DIM, metric="ip", calibration="percentile", percentile=99.9)
        index.train(x)
    assert index._lo[3] == pytest.approx(-2.0)
    assert index._scale[3] == pytest.approx(5.0 / 255)


def test_int8_trained_normally_does_not_warn() -> None:
    x, _ = clustered(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        int8_after(x, x[:10], "cos")


def test_int8_all_zero_training_data() -> None:
    with pytest.warns(UserWarning, match=r"their value \+- 2, twice the largest"):
        index = int8_after(np.zeros((3, DIM), np.float32), np.eye(DIM, dtype=np.float32), "l2")
    assert np.all(np.isfinite(index._scale)) and np.all(index._scale > 0)
    _, ids = index.search(np.eye(DIM, dtype=np.float32), 1)
    np.testing.assert_array_equal(ids[:, 0], np.arange(DIM))


# ----------------------------------------------------------------------------- BEBR


@pytest.fixture(scope="module")
def with_zeros() -> tuple[np.ndarray, BEBR, Flat]:
    x = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    x[[5, 17]] = 0.0
    bebr = BEBR(16, bits=2, epochs=2)
    bebr.train(x)
    bebr.add(x)
    flat = Flat(16, metric="cos")
    flat.add(x)
    return x, bebr, flat


def test_bebr_zero_query_scores_zero_like_flat(with_zeros: tuple[np.ndarray, BEBR, Flat]) -> None:
    _, bebr, flat = with_zeros
    zero = np.zeros((2, 16), np.float32)
    s_b, i_b = bebr.search(zero, 300)
    s_f, i_f = flat.search(zero, 300)
    np.testing.assert_array_equal(s_b, 0.0)
    np.testing.assert_array_equal(s_b, s_f)
    np.testing.assert_array_equal(i_b, i_f)  # all ties: lowest ids first in both


def test_bebr_zero_rows_score_zero_like_flat(with_zeros: tuple[np.ndarray, BEBR, Flat]) -> None:
    x, bebr, flat = with_zeros
    q = x[[0, 1, 2, 40]]
    for index in (bebr, flat):
        s, i = index.search(q, 300)
        for row in range(len(q)):
            for zero_id in (5, 17):
                assert float(s[row][i[row] == zero_id][0]) == 0.0


def test_bebr_zero_positions_follow_remove_and_save(tmp_path: Path) -> None:
    x = np.random.default_rng(1).standard_normal((60, 16)).astype(np.float32)
    x[[4, 30, 59]] = 0.0
    index = BEBR(16, epochs=1)
    index.train(x)
    index.add(x)
    index.remove([0, 31])
    np.testing.assert_array_equal(index._zero_pos, [3, 29, 57])
    index.save(tmp_path / "bebr")
    loaded = load_index(tmp_path / "bebr")
    assert isinstance(loaded, BEBR)
    np.testing.assert_array_equal(loaded._zero_pos, [3, 29, 57])
    q = x[[1, 2]]
    s, i = loaded.search(q, 58)
    assert np.all(s[np.isin(i, [4, 30, 59])] == 0.0)


def test_bebr_state_without_zero_positions_loads(tmp_path: Path) -> None:
    x = np.random.default_rng(2).standard_normal((40, 16)).astype(np.float32)
    index = BEBR(16, epochs=1)
    index.train(x)
    index.add(x)
    arrays, meta = index._state()
    meta = {**meta, "dim": 16, "metric": "cos"}
    old = {k: v for k, v in arrays.items() if k != "zero_positions"}  # files saved before
    assert BEBR._from_state(old, meta, tmp_path)._zero_pos.size == 0
    bad = {**arrays, "zero_positions": np.array([3, 3], np.int64)}
    with pytest.raises(ValueError, match=r"zero_positions must be increasing int64 positions"):
        BEBR._from_state(bad, meta, tmp_path)
