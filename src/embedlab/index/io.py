"""Saving and loading vector indexes: a folder of ``.npy`` arrays plus ``index.json``.

Layout of a saved index folder::

    index.json      {"format": "embedlab-index", "version": 1, "class": "Rerank",
                     "spec": "Binary,Rerank(Flat,k_factor=10)", "dim": 384, "metric": "cos",
                     "trained": true, "next_id": 1000, "meta": {...},
                     "arrays": {"ids": {"file": "ids.npy", "sha256": "...", "shape": [...],
                                        "dtype": "int64"}, ...},
                     "children": {"base": {"sha256": "<sha256 of base/index.json>"}}}
    ids.npy, <array>.npy ...
    base/           a nested index, same layout

No pickle: arrays are written with ``np.save`` and read with ``allow_pickle=False``. Every
file is checked against its sha256 on load, so an altered or truncated file is a
``ValueError`` naming it. Saving is atomic: the folder is written next to the target, fsynced,
then swapped in (old folder renamed away, new one renamed into place, old one deleted).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.index._base import INDEXES, IdMap, VectorIndex

__all__ = ["FORMAT", "VERSION", "load_child", "load_index", "save_index"]

FORMAT = "embedlab-index"
VERSION = 1
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_META = ("dim", "metric")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())


def _write_tree(index: VectorIndex, folder: Path) -> str:
    """Write ``index`` into the (existing, empty) ``folder``; return the sha256 of its json."""
    arrays, meta = index._state()
    for key in _RESERVED_META:
        if key in meta:
            raise RuntimeError(f"{type(index).__name__}._state meta must not use key {key!r}")
    if "ids" in arrays:
        raise RuntimeError(f"{type(index).__name__}._state must not name an array 'ids'")
    entries: dict[str, Any] = {}
    for name, arr in {"ids": index._idmap.ids, **arrays}.items():
        if not _NAME.match(name):
            raise RuntimeError(f"array names must be identifiers, got {name!r}")
        if arr.dtype.hasobject:
            raise RuntimeError(f"array {name!r} has dtype object; it cannot be saved")
        file = folder / f"{name}.npy"
        _write_npy(file, arr)
        entries[name] = {
            "file": file.name,
            "sha256": _sha256(file),
            "shape": list(arr.shape),
            "dtype": arr.dtype.str,
        }
    children: dict[str, Any] = {}
    for name, child in index._children().items():
        if not _NAME.match(name) or name in arrays or name == "ids":
            raise RuntimeError(f"child names must be identifiers distinct from arrays: {name!r}")
        sub = folder / name
        sub.mkdir()
        children[name] = {"sha256": _write_tree(child, sub)}
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "class": index.index_name or type(index).__name__,
        "spec": index.spec(),
        "dim": index.dim,
        "metric": index.metric,
        "trained": index.is_trained,
        "ntotal": index.ntotal,
        "next_id": index._idmap.next_id,
        "meta": meta,
        "arrays": entries,
        "children": children,
    }
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
    json_path = folder / "index.json"
    with open(json_path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(folder)
    return hashlib.sha256(data).hexdigest()


def _after_save(index: VectorIndex, folder: Path) -> None:
    for name, child in index._children().items():
        _after_save(child, folder / name)
    index._after_save(folder)


def save_index(index: VectorIndex, path: str | os.PathLike[str]) -> Path:
    """Save ``index`` into the folder ``path``, atomically replacing an index saved there.

    Raises:
        ValueError: ``path`` exists and is a file, or a non-empty folder that is not an index.
    """
    target = Path(path)
    if target.exists():
        if not target.is_dir():
            raise ValueError(f"index path must be a folder, got the file {target}")
        if any(target.iterdir()) and not (target / "index.json").exists():
            raise ValueError(
                f"index path {target} is a non-empty folder without index.json; "
                "refusing to replace it"
            )
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.new-"))
    old: Path | None = None
    try:
        _write_tree(index, tmp)
        os.chmod(tmp, 0o755)
        if target.exists():
            old = parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
        os.replace(tmp, target)
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not target.exists():
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    _after_save(index, target)
    return target


def _read_json(folder: Path) -> tuple[dict[str, Any], str]:
    json_path = folder / "index.json"
    if not folder.is_dir():
        raise ValueError(f"index folder {folder} does not exist")
    if not json_path.is_file():
        raise ValueError(f"{folder} is not an index folder: it has no index.json")
    data = json_path.read_bytes()
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{json_path} is corrupted: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{json_path} is not an embedlab index file (format != {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise ValueError(
            f"{json_path} has format version {doc.get('version')!r}; this embedlab reads "
            f"version {VERSION}"
        )
    for key in ("class", "dim", "metric", "meta", "arrays", "children", "trained", "next_id"):
        if key not in doc:
            raise ValueError(f"{json_path} is corrupted: it has no {key!r} entry")
    return doc, hashlib.sha256(data).hexdigest()


def _load_array(folder: Path, name: str, entry: Any, mmap: bool) -> np.ndarray:
    if not isinstance(entry, dict) or not _NAME.match(name):
        raise ValueError(f"{folder / 'index.json'} is corrupted: bad entry for array {name!r}")
    file = folder / f"{name}.npy"
    if entry.get("file") != file.name:
        raise ValueError(f"{folder / 'index.json'} is corrupted: bad file for array {name!r}")
    if not file.is_file():
        raise ValueError(f"index file {file} is missing")
    if _sha256(file) != entry.get("sha256"):
        raise ValueError(
            f"index file {file} is corrupted or was altered: its sha256 does not match index.json"
        )
    try:
        arr: np.ndarray = np.load(file, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"index file {file} cannot be read: {exc}") from None
    if list(arr.shape) != entry.get("shape") or arr.dtype.str != entry.get("dtype"):
        raise ValueError(
            f"index file {file} holds {arr.dtype.str} {list(arr.shape)}, index.json says "
            f"{entry.get('dtype')} {entry.get('shape')}"
        )
    return arr


def _load(folder: Path, expected_sha: str | None) -> VectorIndex:
    doc, sha = _read_json(folder)
    if expected_sha is not None and sha != expected_sha:
        raise ValueError(
            f"index file {folder / 'index.json'} is corrupted or was altered: its sha256 "
            "does not match the parent index.json"
        )
    cls = INDEXES.get(str(doc["class"]))
    children = doc["children"]
    if not isinstance(children, dict):
        raise ValueError(f"{folder / 'index.json'} is corrupted: bad 'children' entry")
    arrays = {
        name: _load_array(folder, name, entry, name in cls.disk_arrays)
        for name, entry in dict(doc["arrays"]).items()
    }
    if "ids" not in arrays:
        raise ValueError(f"{folder / 'index.json'} is corrupted: it lists no ids array")
    ids = np.asarray(arrays.pop("ids"), dtype=np.int64)
    meta = dict(doc["meta"])
    meta.update(dim=doc["dim"], metric=doc["metric"])
    index = cls._from_state(arrays, meta, folder)
    index._idmap = IdMap(ids, next_id=int(doc["next_id"]))
    index._trained = bool(doc["trained"])
    return index


def load_index(path: str | os.PathLike[str]) -> VectorIndex:
    """Load an index saved by :func:`save_index` (checksums verified, no pickle).

    Raises:
        ValueError: the folder is not an index, a file is missing, altered or truncated
            (the message names it), or the index class is not registered.
    """
    return _load(Path(path), None)


def load_child(folder: Path, name: str) -> VectorIndex:
    """Load the nested index ``name`` of the index being loaded from ``folder``.

    For use in ``_from_state`` of wrapping indexes; also checks the child's ``index.json``
    against the checksum recorded by the parent.
    """
    doc, _ = _read_json(folder)
    entry = doc["children"].get(name) if isinstance(doc["children"], dict) else None
    if not isinstance(entry, dict) or "sha256" not in entry:
        raise ValueError(f"{folder / 'index.json'} is corrupted: it lists no child {name!r}")
    return _load(folder / name, str(entry["sha256"]))
