"""Persistence: folder layout, checksums, corrupted/truncated files, safe and atomic saves."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from embedlab.index import Rerank, index_factory, load_index, save_index
from embedlab.index._store import canonical_checksum
from embedlab.index.io import data_folder


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((300, 32)).astype(np.float32)


def saved(tmp_path: Path, x: np.ndarray, spec: str = "Int8,Rerank(Flat)") -> Path:
    index = index_factory(32, spec)
    index.train(x)
    index.add(x)
    return save_index(index, tmp_path / "ix")


def rewrite_json(path: Path, edit: object) -> None:
    """Edit an index.json and re-seal every checksum above it (a deliberate edit)."""
    doc = json.loads(path.read_text())
    edit(doc)  # type: ignore[operator]
    doc["checksum"] = canonical_checksum(doc)
    path.write_text(json.dumps(doc))


def test_layout_and_json(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x)
    manifest = json.loads((path / "index.json").read_text())
    assert manifest["format"] == "embedlab-index" and manifest["version"] == 2
    data = data_folder(path)
    assert data.parent == path and data.name == manifest["data"]
    doc = json.loads((data / "index.json").read_text())
    assert doc["class"] == "Rerank" and doc["spec"] == "Int8,Rerank(Flat,k_factor=10)"
    assert doc["dim"] == 32 and doc["metric"] == "cos" and doc["ntotal"] == 300
    assert set(doc["arrays"]) == {"ids", "vectors"} and len(doc["arrays"]["ids"]["xxh3_128"]) == 32
    assert sorted(p.name for p in (data / "base").iterdir()) == [
        "codes.npy",
        "ids.npy",
        "index.json",
        "lo.npy",
        "scale.npy",
    ]
    assert sorted(p.name for p in path.iterdir()) == [".embedlab.lock", data.name, "index.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]  # nothing beside it


def test_npy_files_load_without_pickle(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x)
    for f in path.rglob("*.npy"):
        np.load(f, allow_pickle=False)


@pytest.mark.parametrize("file", ["vectors.npy", "base/codes.npy", "base/ids.npy"])
def test_altered_file_is_named(tmp_path: Path, x: np.ndarray, file: str) -> None:
    data = data_folder(saved(tmp_path, x))
    raw = bytearray((data / file).read_bytes())
    raw[-3] ^= 0xFF
    (data / file).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=rf"{Path(file).name} is corrupted or was altered"):
        load_index(tmp_path / "ix")
    if "ids" not in file:  # what verify=False skips: the data hash (ids are still validated)
        load_index(tmp_path / "ix", verify=False)


@pytest.mark.parametrize("file", ["vectors.npy", "base/lo.npy"])
@pytest.mark.parametrize("verify", [True, False])
def test_truncated_file_is_named(tmp_path: Path, x: np.ndarray, file: str, verify: bool) -> None:
    data = data_folder(saved(tmp_path, x))
    raw = (data / file).read_bytes()
    (data / file).write_bytes(raw[: len(raw) - 7])
    with pytest.raises(ValueError, match=rf"{Path(file).name} is corrupted or was altered"):
        load_index(tmp_path / "ix", verify=verify)


def test_missing_file_is_named(tmp_path: Path, x: np.ndarray) -> None:
    data = data_folder(saved(tmp_path, x))
    (data / "base" / "scale.npy").unlink()
    with pytest.raises(ValueError, match=r"index file .*scale.npy is missing"):
        load_index(tmp_path / "ix")


@pytest.mark.parametrize(
    ("field", "value"),
    [("dim", 64), ("class", "Flat"), ("next_id", 0), ("ntotal", 5), ("metric", "l2")],
)
def test_edited_metadata_is_caught_by_the_checksum(
    tmp_path: Path, x: np.ndarray, field: str, value: object
) -> None:
    data = data_folder(saved(tmp_path, x))
    doc = json.loads((data / "index.json").read_text())
    doc[field] = value
    (data / "index.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"index.json is corrupted or was altered"):
        load_index(tmp_path / "ix")


def test_altered_child_json(tmp_path: Path, x: np.ndarray) -> None:
    data = data_folder(saved(tmp_path, x))
    rewrite_json(data / "base" / "index.json", lambda d: d["meta"].update(percentile=50.0))
    with pytest.raises(ValueError, match=r"base/index.json is corrupted or was altered"):
        load_index(tmp_path / "ix")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dim", -3, r"field 'dim' must be an integer in \[1, 16777216\], got -3"),
        ("dim", "32", r"field 'dim' must be an integer"),
        ("metric", "hamming", r"field 'metric' must be one of cos, ip, l2"),
        ("next_id", -1, r"field 'next_id' must be an integer in \[0, 2\*\*63\]"),
        ("meta", [], r"field 'meta' must be an object"),
        ("trained", 1, r"field 'trained' must be true or false"),
        ("class", "NoSuchIndex", r"unknown index 'NoSuchIndex'; valid indexes: .*Flat"),
    ],
)
def test_schema_errors_name_the_field(
    tmp_path: Path, x: np.ndarray, field: str, value: object, message: str
) -> None:
    path = saved(tmp_path, x, "Flat")
    data = data_folder(path)
    rewrite_json(data / "index.json", lambda d: d.update({field: value}))
    rewrite_json(path / "index.json", lambda d: d.update(sha256=_sha(data / "index.json")))
    with pytest.raises(ValueError, match=message):
        load_index(path)


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _resealed_ids(tmp_path: Path, x: np.ndarray, ids: np.ndarray, next_id: int) -> Path:
    """A Flat index whose ids.npy was replaced and every checksum re-sealed."""
    from embedlab.index._npy import write_npy

    path = saved(tmp_path, x[:3], "Flat")
    data = data_folder(path)
    digest = write_npy(data / "ids.npy", ids)

    def edit(d: dict) -> None:  # type: ignore[type-arg]
        d["arrays"]["ids"].update(xxh3_128=digest, shape=list(ids.shape))
        d["next_id"] = next_id

    rewrite_json(data / "index.json", edit)
    rewrite_json(path / "index.json", lambda d: d.update(sha256=_sha(data / "index.json")))
    return path


@pytest.mark.parametrize(
    ("ids", "next_id", "message"),
    [
        ([0, 0, 0], 1, r"ids must be unique, got id 0 twice"),
        ([-1, 1, 2], 3, r"ids must be >= 0, got -1"),
        ([0, 1, 9], 3, r"next_id 3 must exceed the largest id 9"),
        ([0, 1], 2, r"ntotal is 3 but ids.npy holds 2 ids"),
    ],
)
def test_ids_are_validated_on_load(
    tmp_path: Path, x: np.ndarray, ids: list[int], next_id: int, message: str
) -> None:
    path = _resealed_ids(tmp_path, x, np.array(ids, np.int64), next_id)
    with pytest.raises(ValueError, match=message):
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
    (tmp_path / "index.json").write_text("{}")
    with pytest.raises(ValueError, match=r"is not an embedlab index file"):
        load_index(tmp_path)


def test_wrong_version(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x, "Flat")
    rewrite_json(path / "index.json", lambda d: d.update(version=99))
    with pytest.raises(ValueError, match=r"format version 99; this embedlab reads versions 1"):
        load_index(path)


def test_links_inside_the_folder_are_refused(tmp_path: Path, x: np.ndarray) -> None:
    data = data_folder(saved(tmp_path, x, "Flat"))
    outside = tmp_path / "outside.npy"
    os.replace(data / "ids.npy", outside)
    os.symlink(outside, data / "ids.npy")
    with pytest.raises(ValueError, match=r"is a symbolic link; an index folder may not contain"):
        load_index(tmp_path / "ix")


# ---------------------------------------------------------------- saving never loses data
def test_save_refuses_an_existing_index_without_overwrite(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x, "Flat")
    small = index_factory(32, "Binary")
    small.add(x[:10])
    with pytest.raises(ValueError, match=r"already holds an embedlab index; pass overwrite=True"):
        small.save(path)
    assert load_index(path).spec() == "Flat"
    (path / "NOTES.md").write_text("my notes")
    small.save(path, overwrite=True)
    loaded = load_index(path)
    assert loaded.spec() == "Binary" and loaded.ntotal == 10
    assert (path / "NOTES.md").read_text() == "my notes"  # the user's file is kept
    assert len(list(path.glob("data-*"))) == 1  # the old data folder is gone


@pytest.mark.parametrize("overwrite", [False, True])
def test_save_refuses_a_foreign_folder(tmp_path: Path, x: np.ndarray, overwrite: bool) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "index.json").write_text("{}")  # somebody else's index.json
    (mine / "thesis.tex").write_text("keep me")
    index = index_factory(32, "Flat")
    with pytest.raises(ValueError, match=r"non-empty folder that is not an embedlab index"):
        index.save(mine, overwrite=overwrite)
    with pytest.raises(ValueError, match=r"index path must be a folder"):
        index.save(mine / "thesis.tex", overwrite=overwrite)
    assert sorted(p.name for p in mine.iterdir()) == ["index.json", "thesis.tex"]
    assert (mine / "thesis.tex").read_text() == "keep me"


def test_save_into_an_empty_folder(tmp_path: Path, x: np.ndarray) -> None:
    (tmp_path / "empty").mkdir()
    index = index_factory(32, "Flat")
    index.add(x[:4])
    index.save(tmp_path / "empty")
    assert load_index(tmp_path / "empty").ntotal == 4


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
        index.save(path, overwrite=True)
    assert load_index(path).spec() == "Flat"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]
    assert len(list(path.glob("data-*"))) == 1
    with pytest.raises(OSError, match="disk full"):
        index.save(tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()  # a failed first save leaves no folder


def test_leftovers_of_a_killed_save_are_removed_by_the_next(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x, "Flat")
    stale = path / "data-0123456789abcdef"
    stale.mkdir()
    (stale / ".embedlab-data").write_bytes(b"")
    (stale / "ids.npy").write_bytes(b"half")
    foreign = path / "data-notours"
    foreign.mkdir()
    (path / ".index.json.abc.tmp").write_text("{")
    assert load_index(path).ntotal == 300  # leftovers do not disturb a load
    index_factory(32, "Flat").save(path, overwrite=True)
    assert not stale.exists() and not (path / ".index.json.abc.tmp").exists()
    assert foreign.exists()  # not ours: kept


def test_version_1_folders_load_and_are_replaced_file_by_file(
    tmp_path: Path, x: np.ndarray
) -> None:
    path = saved(tmp_path, x)
    data = data_folder(path)
    v1 = tmp_path / "v1"
    v1.mkdir()
    for src in data.rglob("*"):  # rebuild the version-1 layout: the tree at the top level
        dst = v1 / src.relative_to(data)
        if src.is_dir():
            dst.mkdir()
        elif src.name == "index.json":
            doc = json.loads(src.read_text())
            doc.pop("checksum")
            doc["version"] = 1
            for name, entry in doc["arrays"].items():
                entry.pop("xxh3_128")
                entry["sha256"] = _sha(src.parent / f"{name}.npy")
            dst.write_text(json.dumps(doc))
        elif src.suffix == ".npy":
            dst.write_bytes(src.read_bytes())
    for child in v1.rglob("index.json"):  # children's sha as the parent records it
        if child.parent != v1:
            parent = child.parent.parent / "index.json"
            rewrite_v1 = json.loads(parent.read_text())
            rewrite_v1["children"][child.parent.name]["sha256"] = _sha(child)
            parent.write_text(json.dumps(rewrite_v1))
    old = load_index(v1)
    assert old.ntotal == 300
    np.testing.assert_array_equal(old.search(x[:5], 5)[1], load_index(path).search(x[:5], 5)[1])
    (v1 / "NOTES.md").write_text("mine")
    index_factory(32, "Flat").save(v1, overwrite=True)
    assert sorted(p.name for p in v1.iterdir() if not p.name.startswith("data-")) == [
        ".embedlab.lock",
        "NOTES.md",
        "index.json",
    ]
    assert load_index(v1).spec() == "Flat"


def test_a_version_1_swap_killed_between_renames_is_recovered(
    tmp_path: Path, x: np.ndarray
) -> None:
    path = saved(tmp_path, x, "Flat")
    os.rename(path, tmp_path / ".ix.old-1a2b3c4d")  # embedlab 0.1 died right here
    (tmp_path / ".ix.new-zz99yy88").mkdir()
    assert load_index(path).ntotal == 300  # the load puts the old index back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ix"]


def test_concurrent_writers_and_readers(tmp_path: Path, x: np.ndarray) -> None:
    path = saved(tmp_path, x[:50], "Flat")
    errors: list[BaseException] = []

    def write(i: int) -> None:
        index = index_factory(32, "Flat")
        index.add(x[: 10 + i])
        for _ in range(5):
            try:
                index.save(path, overwrite=True)
            except BaseException as exc:
                errors.append(exc)

    def read() -> None:
        for _ in range(20):
            try:
                assert load_index(path).ntotal in {50, *range(10, 14)}
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert load_index(path).ntotal in range(10, 14)
    assert len(list(path.glob("data-*"))) == 1


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
    index.save(tmp_path / "ix", overwrite=True)  # its own saved folder, replaced under it
    np.testing.assert_array_equal(index.search(x[:5], 5)[1], i1)
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
