"""Writing an index as a tree of ``.npy`` arrays and ``index.json`` documents.

Kept apart from :mod:`embedlab.index._base` (which calls :func:`save_index` from
``VectorIndex.save``) and from :mod:`embedlab.index.io` (loading, which needs the registry),
so no module imports another that imports it back: the index is typed against the small
:class:`SavableIndex` protocol, which ``VectorIndex`` satisfies, not against ``VectorIndex``.

Each saved node (the index, then each nested index in a sub-folder) has an ``index.json``::

    {"format": "embedlab-index", "version": 2, "class": "Rerank",
     "spec": "Binary,Rerank(Flat,k_factor=20)", "dim": 384, "metric": "cos",
     "trained": true, "ntotal": 1000, "next_id": 1000, "meta": {...},
     "arrays": {"ids": {"file": "ids.npy", "xxh3_128": "<checksum>", "shape": [1000],
                        "dtype": "<i8"}, ...},
     "children": {"base": {"sha256": "<sha256 of base/index.json>"}},
     "checksum": "<sha256 of the canonical JSON of the other fields>"}
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from embedlab.index._idmap import IdMap
from embedlab.index._npy import CHECKSUM, write_npy
from embedlab.index._store import FORMAT, VERSION, canonical_checksum, fsync_dir, save_folder

__all__ = ["NAME", "SavableIndex", "save_index"]

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_META = ("dim", "metric")


class SavableIndex(Protocol):
    """What saving reads from an index (``VectorIndex`` has all of it)."""

    @property
    def index_name(self) -> str: ...
    @property
    def _idmap(self) -> IdMap: ...
    @property
    def dim(self) -> int: ...
    @property
    def metric(self) -> str: ...
    @property
    def is_trained(self) -> bool: ...
    @property
    def ntotal(self) -> int: ...
    def spec(self) -> str: ...
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]: ...
    def _children(self) -> Mapping[str, SavableIndex]: ...
    def _after_save(self, folder: Path) -> None: ...


def _write_tree(index: SavableIndex, folder: Path) -> str:
    """Write ``index`` into the (existing, empty) ``folder``; return the sha256 of its json."""
    arrays, meta = index._state()
    for key in _RESERVED_META:
        if key in meta:
            raise RuntimeError(f"{type(index).__name__}._state meta must not use key {key!r}")
    if "ids" in arrays:
        raise RuntimeError(f"{type(index).__name__}._state must not name an array 'ids'")
    entries: dict[str, Any] = {}
    for name, arr in {"ids": index._idmap.ids, **arrays}.items():
        if not NAME.match(name):
            raise RuntimeError(f"array names must be identifiers, got {name!r}")
        file = folder / f"{name}.npy"
        digest = write_npy(file, arr)
        entries[name] = {
            "file": file.name,
            CHECKSUM: digest,
            "shape": list(arr.shape),
            "dtype": arr.dtype.str,
        }
    children: dict[str, Any] = {}
    remote = getattr(index, "_write_children", None)  # children written elsewhere (Ray)
    written = remote(folder) if remote is not None else None
    for name, sha in (written or {}).items():
        children[name] = {"sha256": sha}
    for name, child in index._children().items():
        if not NAME.match(name) or name in arrays or name == "ids":
            raise RuntimeError(f"child names must be identifiers distinct from arrays: {name!r}")
        sub = folder / name
        sub.mkdir()
        children[name] = {"sha256": _write_tree(child, sub)}
    doc: dict[str, Any] = {
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
    doc["checksum"] = canonical_checksum(doc)
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
    with open(folder / "index.json", "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    fsync_dir(folder)
    return hashlib.sha256(data).hexdigest()


def _after_save(index: SavableIndex, folder: Path) -> None:
    for name, child in index._children().items():
        _after_save(child, folder / name)
    index._after_save(folder)


def save_index(
    index: SavableIndex, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Save ``index`` into the folder ``path``; crash-safe, never touching the user's files.

    ``path`` must be absent, an empty folder, or a folder holding an embedlab index (then
    ``overwrite=True`` is required). Other files in an index folder are kept. See
    :mod:`embedlab.index._store` for the layout and the atomic swap.

    Returns:
        ``path``.

    Raises:
        ValueError: ``path`` is a file, a non-empty folder that is not an index, or an index
            while ``overwrite`` is false. Nothing was written or deleted then.
    """
    target = Path(path)
    data = save_folder(target, lambda folder: _write_tree(index, folder), overwrite=overwrite)
    _after_save(index, data)
    return target
