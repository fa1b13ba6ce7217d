"""ShardedIndex: equal to one unsharded index, persistence, removal, and the Ray backend."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from embedlab.index import ShardedIndex, index_factory, load_index

EXACT_SPECS = ["Flat", "Int8", "PQ4"]


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((1200, 16)).astype(np.float32)


def _pair(spec: str, x: np.ndarray, **kw: object) -> tuple[object, ShardedIndex]:
    one = index_factory(16, spec)
    one.train(x)
    one.add(x)
    sharded = ShardedIndex(16, spec=spec, shards=3, **kw)  # type: ignore[arg-type]
    sharded.train(x)
    sharded.add_batches(np.array_split(x, 5))
    return one, sharded


@pytest.mark.parametrize("spec", EXACT_SPECS)
def test_local_shards_equal_one_index(spec: str, x: np.ndarray, tmp_path: Path) -> None:
    one, sharded = _pair(spec, x)
    s1, i1 = one.search(x[:40], 10)  # type: ignore[attr-defined]
    s2, i2 = sharded.search(x[:40], 10)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, rtol=1e-6)
    assert sharded.shard_sizes() == [400, 400, 400] and sharded.ntotal == 1200
    sharded.save(tmp_path / "s")
    loaded = load_index(tmp_path / "s")
    assert isinstance(loaded, ShardedIndex) and loaded.spec() == spec
    np.testing.assert_array_equal(loaded.search(x[:40], 10)[1], i1)


def test_corrupted_shard_is_named(x: np.ndarray, tmp_path: Path) -> None:
    from embedlab.index.io import data_folder

    sharded = ShardedIndex(16, spec="Int8", shards=2)
    sharded.train(x)
    sharded.add(x[:50])
    sharded.save(tmp_path / "s")
    codes = data_folder(tmp_path / "s") / "shard1" / "codes.npy"
    raw = bytearray(codes.read_bytes())
    raw[-1] ^= 0xFF
    codes.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"shard1/codes.npy is corrupted or was altered"):
        load_index(tmp_path / "s")
    empty = ShardedIndex(16, spec="Flat", shards=3)
    assert empty.search(x[:2], 4)[1].tolist() == [[-1] * 4] * 2  # -1 past ntotal
    assert empty.memory_bytes() >= 0


def test_remove_and_ids(x: np.ndarray) -> None:
    sharded = ShardedIndex(16, spec="Flat", shards=4)
    sharded.add(x[:100], ids=np.arange(1000, 1100))
    assert sharded.remove([1000, 1050, 1099]) == 3
    _, ids = sharded.search(x[:100], 1)
    assert set(ids[:, 0].tolist()) == set(range(1000, 1100)) - {1000, 1050, 1099}
    assert sharded.shard_sizes() == [24, 25, 24, 24]


def test_bad_input(x: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"shards must be >= 1, got 0"):
        ShardedIndex(16, shards=0)
    with pytest.raises(ValueError, match=r"backend must be one of"):
        ShardedIndex(16, backend="spark")
    sharded = ShardedIndex(16, spec="Flat", shards=2)
    with pytest.raises(ValueError, match=r"search parameter 'nprobe' is not taken by Flat"):
        sharded.search(x[:2], 3, nprobe=4)


def test_ray_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install 'embedlab\[ray\]'"):
        ShardedIndex(16, shards=2, backend="ray")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[object]:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'embedlab[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_shards_equal_one_index(ray_cluster: object, x: np.ndarray, tmp_path: Path) -> None:
    one, sharded = _pair("PQ4", x, backend="ray")
    try:
        _, i1 = one.search(x[:40], 10)  # type: ignore[attr-defined]
        np.testing.assert_array_equal(sharded.search(x[:40], 10)[1], i1)
        assert sharded.remove([5, 6]) == 2
        sharded.save(tmp_path / "s")
    finally:
        sharded.close()
    local = load_index(tmp_path / "s")
    assert local.ntotal == 1198
    again = ShardedIndex.load(tmp_path / "s", backend="ray")
    try:
        np.testing.assert_array_equal(again.search(x[:40], 10)[1], local.search(x[:40], 10)[1])
        ray_cluster.kill(again._ray.actors[1])  # type: ignore[attr-defined, union-attr]
        with pytest.raises(RuntimeError, match=r"shard 1 \(Ray actor\) died"):
            again.search(x[:2], 3)
    finally:
        again.close()
    assert load_index(tmp_path / "s").ntotal == 1198  # the saved shards are untouched
