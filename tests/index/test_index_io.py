"""Persistence: folder layout, checksums, corrupted/truncated files, atomic replace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedlab.index import Rerank, index_factory, load_index, save_index


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((300, 32)).astype(np.float32)


def saved(tmp_path: Path, x: np.ndarray, spec: str = "Int8,Rerank(Flat)") -> Path:
    index = index_factory(32, spec)
    index.train(x)
    index.add(x)
    return save_index(index, tmp_path / "ix")


def test_layout_and_json(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x)
    doc = json.loads((path / "index.json").read_text())
    assert doc["class"] == "Rerank" and doc["spec"] == "Int8,Rerank(Flat,k_factor=20)"
    assert doc["dim"] == 32 and doc["metric"] == "cos" and doc["version"] == 1
    assert set(doc["arrays"]) == {"ids", "vectors"} and len(doc["arrays"]["ids"]["sha256"]) == 64
    assert sorted(p.name for p in (path / "base").iterdir()) == [
        "codes.npy",
        "ids.npy",
        "index.json",
        "lo.npy",
        "scale.npy",
    ]
    assert not list(tmp_path.glob(".ix*"))  # no temp folders left behind


def test_npy_files_load_without_pickle(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x)
    for f in path.rglob("*.npy"):
        np.load(f, allow_pickle=False)


@pytest.mark.parametrize("file", ["vectors.npy", "base/codes.npy", "base/ids.npy"])
def test_altered_file_is_named(tmp_path: Path, x: np.ndarray, file: str) -> None:
    path = saved(tmp_path, x)
    data = bytearray((path / file).read_bytes())
    data[-3] ^= 0xFF
    (path / file).write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{Path(file).name} is corrupted or was altered"):
        load_index(path)


@pytest.mark.parametrize("file", ["vectors.npy", "base/lo.npy"])
def test_truncated_file_is_named(tmp_path: Path, x: np.ndarray, file: str) -> None:
    path = saved(tmp_path, x)
    data = (path / file).read_bytes()
    (path / file).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"{Path(file).name} is corrupted or was altered"):
        load_index(path)


def test_missing_file_is_named(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x)
    (path / "base" / "scale.npy").unlink()
    with pytest.raises(ValueError, match=r"index file .*scale.npy is missing"):
        load_index(path)


def test_altered_child_json(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x)
    child = path / "base" / "index.json"
    doc = json.loads(child.read_text())
    doc["meta"]["percentile"] = 50.0
    child.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"base/index.json is corrupted or was altered"):
        load_index(path)


def test_truncated_json(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x)
    text = (path / "index.json").read_text()
    (path / "index.json").write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"index.json is corrupted: not valid JSON"):
        load_index(path)


def test_not_an_index_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"does not exist"):
        load_index(tmp_path / "nope")
    with pytest.raises(ValueError, match=r"is not an index folder: it has no index.json"):
        load_index(tmp_path)


def test_wrong_version(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x, "Flat")
    doc = json.loads((path / "index.json").read_text())
    doc["version"] = 99
    (path / "index.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"format version 99; this embedlab reads version 1"):
        load_index(path)


def test_unknown_class(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x, "Flat")
    doc = json.loads((path / "index.json").read_text())
    doc["class"] = "HNSW"
    (path / "index.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"unknown index 'HNSW'; valid indexes: .*Flat"):
        load_index(path)


def test_save_replaces_existing_index_atomically(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x, "Flat")
    small = index_factory(32, "Binary")
    small.add(x[:10])
    small.save(path)
    loaded = load_index(path)
    assert loaded.spec() == "Binary" and loaded.ntotal == 10
    assert not (path / "vectors.npy").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]


def test_save_refuses_to_replace_a_foreign_folder(tmp_path: Path, x: np.ndarray) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    index = index_factory(32, "Flat")
    with pytest.raises(ValueError, match=r"non-empty folder without index.json"):
        index.save(tmp_path / "mine")
    with pytest.raises(ValueError, match=r"index path must be a folder"):
        index.save(tmp_path / "mine" / "notes.txt")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_failed_save_keeps_the_old_index(
    tmp_path: Path, x: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = saved(tmp_path, x, "Flat")
    index = index_factory(32, "Binary")
    index.add(x[:5])

    def boom() -> tuple[dict[str, np.ndarray], dict[str, object]]:
        raise OSError("disk full")

    monkeypatch.setattr(index, "_state", boom)
    with pytest.raises(OSError, match="disk full"):
        index.save(path)
    assert load_index(path).spec() == "Flat"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]


def test_rerank_vectors_move_into_the_index_folder(tmp_path: Path, x: np.ndarray) -> None:
    index = index_factory(32, "Binary,Rerank(Flat)", storage=tmp_path / "work")
    assert isinstance(index, Rerank)
    index.add(x)
    work = index.vectors_path
    assert work is not None and work.exists() and work.stat().st_size == 300 * 32 * 4
    _s1, i1 = index.search(x[:5], 5)
    index.save(tmp_path / "ix")
    assert not work.exists() and index.vectors_path is None  # moved
    assert isinstance(index._vectors, np.memmap)
    _s2, i2 = index.search(x[:5], 5)
    np.testing.assert_array_equal(i1, i2)
    # adding after the save copies the saved vectors into a new working file
    index.add(x[:3] + 1.0)
    assert index.vectors_path is not None and index.ntotal == 303
    assert load_index(tmp_path / "ix").ntotal == 300  # the saved folder is untouched


def test_loaded_rerank_maps_vectors_from_disk(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x, "Binary,Rerank(Flat)")
    loaded = load_index(path)
    assert isinstance(loaded, Rerank) and isinstance(loaded._vectors, np.memmap)
    assert loaded.disk_bytes() == 300 * 32 * 4
    assert loaded.memory_bytes() < 300 * 32  # codes + ids only
