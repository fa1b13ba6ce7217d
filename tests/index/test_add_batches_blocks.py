"""add_batches gathers small batches into blocks: same index as one add, errors per batch."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.index import _batches, index_factory


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_batches, "BLOCK_BYTES", 4 * 8 * 50)  # 50 rows of dim 8 per block


def _data(n: int = 300, dim: int = 8) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, dim)).astype(np.float32)


@pytest.mark.parametrize("spec", ["Flat", "Binary,Rerank(Flat)", "IVF4,Flat", "PQ2"])
def test_blocks_equal_one_add(spec: str, small_blocks: None) -> None:
    x = _data()
    one, many = (index_factory(8, spec, metric="cos") for _ in range(2))
    if one.needs_training:
        one.train(x)
        many.train(x)
    one.add(x)
    calls: list[int] = []
    original = many._add_prepared

    def spy(xb: np.ndarray, ids: object = None) -> None:
        calls.append(xb.shape[0])
        original(xb, ids)

    many._add_prepared = spy  # type: ignore[method-assign]
    sizes = [7, 13, 1, 60, 20, 0, 99, 100]
    parts = np.split(x, np.cumsum(sizes))
    assert many.add_batches(parts) == 300
    # 7+13+1 gathered; 60 alone (>= 50 rows); 20; 99 alone; 100 alone
    assert calls == [21, 60, 20, 99, 100]
    s1, i1 = one.search(x[:5], 10)
    s2, i2 = many.search(x[:5], 10)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, rtol=1e-6)


def test_ids_and_kind_changes(small_blocks: None) -> None:
    x = _data(40)
    index = index_factory(8, "Flat", metric="l2")
    index.add_batches([(x[:10], np.arange(100, 110)), (x[10:20], np.arange(200, 210)), x[20:40]])
    _, ids = index.search(x[[0, 15, 25]], 1)
    assert ids[:, 0].tolist() == [100, 205, 215]  # sequential ids continue after the max (210 + 5)


def test_bad_batch_named_and_earlier_batches_kept(small_blocks: None) -> None:
    x = _data(30)
    bad = x[20:30].copy()
    bad[3, 2] = np.nan
    index = index_factory(8, "Flat", metric="l2")
    with pytest.raises(ValueError, match="batch 2"):
        index.add_batches([x[:10], x[10:20], bad])
    assert index.ntotal == 20


def test_repeated_id_across_a_block_names_the_batch(small_blocks: None) -> None:
    x = _data(30)
    index = index_factory(8, "Flat", metric="l2")
    batches = [
        (x[:10], np.arange(10)),
        (x[10:20], np.arange(10, 20)),
        (x[20:30], [19, *range(20, 29)]),
    ]
    with pytest.raises(ValueError, match="batch 2"):
        index.add_batches(batches)
    assert index.ntotal == 20


def test_buffer_reuse_does_not_alias(small_blocks: None) -> None:
    x = _data(200)
    buf = np.empty((10, 8), np.float32)

    def reused():  # a reader that refills one buffer, as file readers do
        for s in range(0, 200, 10):
            buf[:] = x[s : s + 10]
            yield buf

    index = index_factory(8, "Flat", metric="l2")
    index.add_batches(reused())
    _, ids = index.search(x[[5, 105, 195]], 1)
    assert ids[:, 0].tolist() == [5, 105, 195]


def test_l2_normalize_in_place_equals_copy() -> None:
    from embedlab.index._rows import l2_normalize

    x = _data(20)
    x[3] = 0.0
    want = l2_normalize(x)
    got = x.copy()
    out = l2_normalize(got, inplace=True)
    assert out is got
    np.testing.assert_array_equal(got, want)
    assert not np.shares_memory(l2_normalize(x), x)  # the default never touches the input
