"""CTRDataset / CTRSplits: validation errors, subsets and splits."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.data import CTRDataset, CTRSplits
from embedlab.tables import Field

FIELDS = (Field("a", 3), Field("b", 2))


def dataset(n: int = 10, /, **overrides: object) -> CTRDataset:
    rng = np.random.default_rng(0)
    kwargs: dict[str, object] = {
        "ids": np.stack([rng.integers(0, 3, n), rng.integers(0, 2, n)], axis=1),
        "labels": (np.arange(n) % 2).astype(np.float32),
        "fields": FIELDS,
        "name": "toy",
    }
    kwargs.update(overrides)
    return CTRDataset(**kwargs)  # type: ignore[arg-type]


def test_valid_dataset() -> None:
    ds = dataset()
    assert len(ds) == 10 and ds.n_fields == 2
    assert ds.ids.dtype == np.int64 and ds.labels.dtype == np.float32
    assert ds.positive_rate == 0.5


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"labels": np.full(10, 2.0)}, ValueError, r"labels must be 0 or 1, got 2\.0"),
        ({"labels": np.full(10, np.nan)}, ValueError, r"labels must be finite"),
        ({"labels": np.zeros(9)}, ValueError, r"labels must have shape \(10,\), got \(9,\)"),
        ({"ids": np.zeros((10, 3), np.int64)}, ValueError, r"one column per field \(2\), got 3"),
        ({"ids": np.zeros(10, np.int64)}, ValueError, r"ids must have shape \(n, n_fields\)"),
        ({"ids": np.zeros((10, 2))}, TypeError, r"ids must be an integer array, got dtype float64"),
        ({"ids": np.full((10, 2), -1)}, ValueError, r"ids must be >= 0, got -1"),
        (
            {"ids": np.array([[0, 0], [3, 1]] + [[0, 0]] * 8)},
            ValueError,
            r"ids of field 'a' must be in \[0, 3\), got 3 at row 1",
        ),
        ({"dense": np.zeros((9, 4))}, ValueError, r"dense must have shape \(10, n_dense\)"),
    ],
)
def test_validation_errors(overrides: dict[str, object], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        dataset(**overrides)


def test_empty_dataset() -> None:
    with pytest.raises(ValueError, match=r"dataset 'toy' must not be empty, got 0 rows"):
        dataset(ids=np.zeros((0, 2), np.int64), labels=np.zeros(0))


def test_splits_must_share_fields() -> None:
    ds = dataset()
    other = dataset(fields=(Field("a", 3), Field("c", 2)))
    with pytest.raises(ValueError, match=r"train, valid and test must share the same fields"):
        CTRSplits(train=ds, valid=ds, test=other)


def test_split_is_a_deterministic_partition() -> None:
    ds = dataset(100)
    s = ds.split((0.8, 0.1, 0.1), seed=0)
    assert (len(s.train), len(s.valid), len(s.test)) == (80, 10, 10)
    assert s.name == "toy" and s.fields == FIELDS
    again = ds.split(seed=0)
    np.testing.assert_array_equal(s.train.ids, again.train.ids)
    assert not np.array_equal(s.train.labels, ds.split(seed=1).train.labels)
    first, second = ds.split_two(0.9, seed=0)
    assert (len(first), len(second)) == (90, 10)


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ((0.5, 0.5), r"fractions must be three positive numbers"),
        ((0.9, 0.2, 0.1), r"fractions must sum to 1, got 1\.2"),
    ],
)
def test_split_errors(fractions: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataset().split(fractions)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\), got 1\.5"):
        dataset().split_two(1.5)
