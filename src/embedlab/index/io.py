"""Saving and loading vector indexes: a folder of ``.npy`` arrays and ``index.json`` files.

``index.save(path)`` / :func:`save_index` write the folder (layout and crash-safety in
:mod:`embedlab.index._store`, the per-index documents in :mod:`embedlab.index._save`);
:func:`load_index` reads it back. No pickle: arrays are ``.npy`` files read without it.

What loading checks:

- the manifest and every ``index.json`` carry a checksum over their own content, and the
  parent records the sha256 of each child's ``index.json``;
- every ``index.json`` is validated field by field (the error names the field);
- every array's header and file size are checked before it is read or mapped, and with
  ``verify=True`` (the default) it is hashed while it is read and compared with the
  XXH3-128 checksum recorded in ``index.json``;
- links inside the folder are refused; ids must be unique, ``>= 0`` and below ``next_id``.

``verify=False`` (for folders you trust, e.g. written by this process) skips only the
hashing of the array data; everything else above still runs.
"""

from __future__ import annotations

import contextvars
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.index._base import INDEXES, METRICS, IdMap, VectorIndex
from embedlab.index._npy import CHECKSUM, IndexFileError, read_npy, refuse_link
from embedlab.index._save import NAME, save_index
from embedlab.index._store import (
    FORMAT,
    VERSION,
    check_save_target,
    read_json_doc,
    read_snapshot,
)

__all__ = [
    "FORMAT",
    "VERSION",
    "IndexFileError",
    "check_save_target",
    "data_folder",
    "load_child",
    "load_index",
    "save_index",
]

_VERIFY: contextvars.ContextVar[bool] = contextvars.ContextVar("embedlab_verify", default=True)
_INT64_MAX = int(np.iinfo(np.int64).max)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _validate(doc: dict[str, Any], where: Path, checksum: str) -> None:
    """Field-by-field schema check of one node's ``index.json``."""

    def bad(field: str, rule: str) -> IndexFileError:
        return IndexFileError(
            f"{where} is corrupted: field {field!r} must be {rule}, got {doc.get(field)!r}"[:400]
        )

    for field in ("class", "spec"):
        if not isinstance(doc.get(field), str):
            raise bad(field, "a string")
    if not _is_int(doc.get("dim")) or not 1 <= doc["dim"] <= 1 << 24:
        raise bad("dim", "an integer in [1, 16777216]")
    if doc.get("metric") not in METRICS:
        raise bad("metric", f"one of {', '.join(METRICS)}")
    if not isinstance(doc.get("trained"), bool):
        raise bad("trained", "true or false")
    if not _is_int(doc.get("ntotal")) or doc["ntotal"] < 0:
        raise bad("ntotal", "an integer >= 0")
    if not _is_int(doc.get("next_id")) or not 0 <= doc["next_id"] <= _INT64_MAX + 1:
        raise bad("next_id", "an integer in [0, 2**63]")
    for field in ("meta", "arrays", "children"):
        if not isinstance(doc.get(field), dict):
            raise bad(field, "an object")
    for name, entry in doc["arrays"].items():
        if (
            not NAME.match(name)
            or not isinstance(entry, dict)
            or entry.get("file") != f"{name}.npy"
            or not isinstance(entry.get(checksum), str)
            or not isinstance(entry.get("dtype"), str)
            or not isinstance(entry.get("shape"), list)
            or not all(_is_int(s) and s >= 0 for s in entry["shape"])
        ):
            raise IndexFileError(f"{where} is corrupted: bad entry for array {name!r}")
    for name, entry in doc["children"].items():
        if not NAME.match(name) or not isinstance(entry, dict):
            raise IndexFileError(f"{where} is corrupted: bad entry for child {name!r}")
        if not isinstance(entry.get("sha256"), str):
            raise IndexFileError(f"{where} is corrupted: bad entry for child {name!r}")
    if "ids" not in doc["arrays"]:
        raise IndexFileError(f"{where} is corrupted: it lists no ids array")


def _plain_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _load_array(folder: Path, name: str, entry: dict[str, Any], mmap: bool, v1: bool) -> Any:
    file = folder / str(entry["file"])
    verify = _VERIFY.get()
    if v1 and verify:  # version 1 recorded the plain sha256 of the whole file
        refuse_link(file)
        if not file.is_file():
            raise IndexFileError(f"index file {file} is missing")
        if _plain_sha256(file) != entry["sha256"]:
            raise IndexFileError(
                f"index file {file} is corrupted or was altered: its checksum does not match "
                "index.json"
            )
        verify = False
    return read_npy(file, entry, mmap=mmap, verify=verify)


def _check_ids(ids: np.ndarray, doc: dict[str, Any], where: Path) -> np.ndarray:
    if ids.ndim != 1 or ids.dtype != np.int64:
        raise IndexFileError(
            f"{where}: ids must be int64 of shape (n,), got {ids.dtype} {ids.shape}"
        )
    if ids.shape[0] != doc["ntotal"]:
        raise IndexFileError(
            f"{where} is corrupted: ntotal is {doc['ntotal']} but ids.npy holds {ids.shape[0]} ids"
        )
    if ids.size:
        if int(ids.min()) < 0:
            raise IndexFileError(f"{where} is corrupted: ids must be >= 0, got {int(ids.min())}")
        s = np.sort(ids)
        dup = s[1:] == s[:-1]
        if dup.any():
            raise IndexFileError(
                f"{where} is corrupted: ids must be unique, got id {int(s[1:][dup][0])} twice"
            )
        if int(s[-1]) >= doc["next_id"]:
            raise IndexFileError(
                f"{where} is corrupted: next_id {doc['next_id']} must exceed the largest id "
                f"{int(s[-1])}"
            )
    return np.asarray(ids)


def _load(folder: Path, expected_sha: str | None) -> VectorIndex:
    if folder.is_symlink():
        raise IndexFileError(f"index folder {folder} is a symbolic link; links are refused")
    json_path = folder / "index.json"
    doc, raw = read_json_doc(json_path)
    if expected_sha is not None and hashlib.sha256(raw).hexdigest() != expected_sha:
        raise IndexFileError(
            f"index file {json_path} is corrupted or was altered: its sha256 does not match "
            "the parent index.json"
        )
    v1 = doc["version"] == 1
    if v1:  # older files had no ntotal: take it from the ids
        doc.setdefault("ntotal", (doc.get("arrays", {}).get("ids") or {}).get("shape", [0])[0])
    _validate(doc, json_path, "sha256" if v1 else CHECKSUM)
    try:
        cls = INDEXES.get(str(doc["class"]))
    except ValueError as exc:
        raise IndexFileError(f"{json_path}: {exc}") from None
    arrays = {
        name: _load_array(folder, name, entry, name in cls.disk_arrays, v1)
        for name, entry in doc["arrays"].items()
    }
    ids = _check_ids(arrays.pop("ids"), doc, json_path)
    meta = dict(doc["meta"])
    meta.update(dim=doc["dim"], metric=doc["metric"])
    try:
        index = cls._from_state(arrays, meta, folder)
    except IndexFileError:
        raise
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
        raise IndexFileError(
            f"{json_path} is corrupted: its content does not describe a valid "
            f"{doc['class']} index ({type(exc).__name__}: {exc})"[:600]
        ) from None
    index._idmap = IdMap(ids, next_id=int(doc["next_id"]))
    index._trained = bool(doc["trained"])
    return index


def load_index(path: str | os.PathLike[str], *, verify: bool = True) -> VectorIndex:
    """Load an index saved by :func:`save_index` (no pickle; see the module docs).

    Args:
        path: the index folder.
        verify: hash every array file and compare with ``index.json`` (default). ``False``
            skips only that hashing (for trusted folders); the JSON checksums, the schema,
            the ids and every file's header and size are still checked.

    Raises:
        ValueError: the folder is not an index, a file is missing, altered, truncated or a
            link (the message names it), or the index class is not registered.
    """
    token = _VERIFY.set(bool(verify))
    try:
        return read_snapshot(Path(path), _load)
    finally:
        _VERIFY.reset(token)


def data_folder(path: str | os.PathLike[str]) -> Path:
    """The folder holding the current save's files (``PATH/data-…``; ``PATH`` for version 1)."""
    return read_snapshot(Path(path), lambda folder, _sha: folder)


def load_child(folder: Path, name: str) -> VectorIndex:
    """Load the nested index ``name`` of the index being loaded from ``folder``.

    For use in ``_from_state`` of wrapping indexes; also checks the child's ``index.json``
    against the checksum recorded by the parent.
    """
    doc, _ = read_json_doc(folder / "index.json")
    children = doc.get("children")
    entry = children.get(name) if isinstance(children, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        raise IndexFileError(f"{folder / 'index.json'} is corrupted: it lists no child {name!r}")
    return _load(folder / name, str(entry["sha256"]))
