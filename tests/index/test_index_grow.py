"""Amortised adds: many small adds equal one big add, and storage grows geometrically."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.index import index_factory
from embedlab.index._grow import GrowingArray


def test_growing_array_matches_concatenate() -> None:
    rng = np.random.default_rng(0)
    g = GrowingArray((3,), np.float32)
    ref = np.zeros((0, 3), np.float32)
    reallocations = 0
    for _ in range(200):
        block = rng.standard_normal((int(rng.integers(0, 20)), 3)).astype(np.float32)
        before = g.nbytes
        g.append(block)
        reallocations += g.nbytes != before
        ref = np.concatenate([ref, block])
        np.testing.assert_array_equal(g.data, ref)
    assert reallocations < 20  # geometric growth: O(log n) copies, not one per add
    g.delete(np.array([0, 5, 7]))
    np.testing.assert_array_equal(g.data, np.delete(ref, [0, 5, 7], axis=0))
    g.shrink()
    assert g.nbytes == g.data.nbytes


@pytest.mark.parametrize(
    "spec", ["Flat", "Int8", "Binary", "Matryoshka8", "Binary,Rerank(Flat)", "PQ4"]
)
@pytest.mark.parametrize("metric", ["cos", "l2"])
def test_chunked_adds_equal_one_add(spec: str, metric: str) -> None:
    x = np.random.default_rng(1).standard_normal((700, 16)).astype(np.float32)
    one = index_factory(16, spec, metric=metric)  # type: ignore[arg-type]
    one.train(x)
    one.add(x)
    many = index_factory(16, spec, metric=metric)  # type: ignore[arg-type]
    many.train(x)
    many.add_batches(np.array_split(x, 37))
    s1, i1 = one.search(x[:20], 10)
    s2, i2 = many.search(x[:20], 10)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, rtol=1e-6)
    assert many.ids.tolist() == one.ids.tolist()
    # memory: at most the 1.5x growth slack of the rows on top of the exact size
    assert one.memory_bytes() <= many.memory_bytes() <= 1.6 * one.memory_bytes() + 64


def test_add_batches_with_ids_and_a_bad_batch() -> None:
    x = np.random.default_rng(2).standard_normal((30, 8)).astype(np.float32)
    index = index_factory(8, "Flat")
    n = index.add_batches([(x[:10], np.arange(100, 110)), (x[10:20], np.arange(200, 210))])
    assert n == 20 and index.ids[[0, 10]].tolist() == [100, 200]
    bad = x[20:].copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"batch 1: x must be finite, got NaN or inf in row 3"):
        index.add_batches([x[20:25], bad])
    assert index.ntotal == 25  # the batches before the bad one are kept


def test_growth_resizes_in_place_unless_a_view_is_alive() -> None:
    w = 1 << 16  # 256 KB rows: large buffers are memory maps that grow in place
    a = GrowingArray((w,), np.float32)
    a.append(np.ones((10, w), np.float32))
    first = a._map
    assert first is not None
    a.append(np.full((5, w), 2, np.float32))  # mremap: the same map, rows kept
    assert a._map is first and a._buf.shape[0] >= 15
    view = a.data
    a.append(np.full((50, w), 3, np.float32))  # a live view forces allocate-and-copy
    assert a._map is not first
    assert view.sum() == 10 * w + 5 * w * 2  # the old view still reads valid memory
    np.testing.assert_array_equal(a.data[:10], 1)
    np.testing.assert_array_equal(a.data[10:15], 2)
    np.testing.assert_array_equal(a.data[15:], 3)
    small = GrowingArray((4,), np.float32)  # small buffers: plain arrays, copied on growth
    small.append(np.ones((3, 4), np.float32))
    small.append(np.full((30, 4), 2, np.float32))
    assert small._map is None and small.data.sum() == 3 * 4 + 30 * 4 * 2
    outside = np.zeros((5, 4), np.float32)
    small.set(outside)
    small.append(np.ones((1, 4), np.float32))  # never resizes an array it did not allocate
    assert outside.shape == (5, 4)
