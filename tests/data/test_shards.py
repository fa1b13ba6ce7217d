"""Vector shards: bounded chunks, sampling, validation of a folder of .npy files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlab.data import iter_npy_shards, list_npy_shards, sample_npy_shards, write_npy_shards


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, np.ndarray]:
    x = np.random.default_rng(0).standard_normal((1000, 6)).astype(np.float32)
    assert write_npy_shards(tmp_path / "v", x, rows_per_shard=300) == 4
    return tmp_path / "v", x


def test_chunks_cover_every_row_in_order(folder: tuple[Path, np.ndarray]) -> None:
    path, x = folder
    chunks = list(iter_npy_shards(path, chunk_rows=128))
    assert max(c.shape[0] for c in chunks) == 128
    np.testing.assert_array_equal(np.concatenate(chunks), x)
    assert [s.rows for s in list_npy_shards(path)] == [300, 300, 300, 100]


def test_single_file_and_sample(folder: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, x = folder
    np.save(tmp_path / "one.npy", x)
    np.testing.assert_array_equal(np.concatenate(list(iter_npy_shards(tmp_path / "one.npy"))), x)
    s = sample_npy_shards(path, 50, seed=3)
    assert s.shape == (50, 6)
    rows = {tuple(r) for r in x.tolist()}
    assert all(tuple(r) in rows for r in s.tolist())
    np.testing.assert_array_equal(s, sample_npy_shards(path, 50, seed=3))  # seeded
    assert sample_npy_shards(path, 10**6).shape == (1000, 6)  # bounded by the data


def test_bad_folders_name_the_shard(folder: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    path, _ = folder
    np.save(path / "part-99999.npy", np.zeros((3, 7), np.float32))
    with pytest.raises(ValueError, match=r"part-99999.npy holds float32 \(n, 7\) but part-00000"):
        list_npy_shards(path)
    (path / "part-99999.npy").unlink()
    np.save(path / "part-99999.npy", np.zeros((3, 6), np.float64))
    with pytest.raises(ValueError, match=r"same dim and dtype"):
        list_npy_shards(path)
    (path / "part-99999.npy").unlink()
    raw = (path / "part-00001.npy").read_bytes()
    (path / "part-00001.npy").write_bytes(raw[:-10])
    with pytest.raises(ValueError, match=r"part-00001.npy is truncated"):
        list(iter_npy_shards(path))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"holds Python objects .*pickle"):
        list_npy_shards(tmp_path / "obj.npy")
    np.save(tmp_path / "flat.npy", np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"must have shape \(n, dim\), got \(5,\)"):
        list_npy_shards(tmp_path / "flat.npy")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"holds no .npy files"):
        list_npy_shards(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"does not exist"):
        list_npy_shards(tmp_path / "nope")
