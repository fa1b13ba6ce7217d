"""The index folder: what is ours in it, how a save swaps in atomically, how a read gets a snapshot.

Layout (format version 2)::

    PATH/
      index.json          the manifest: {"format": "embedlab-index", "version": 2,
                          "data": "data-<16 hex>", "sha256": <sha256 of data-…/index.json>,
                          "checksum": <sha256 of the manifest's other fields>}
      data-<16 hex>/      the saved tree of the current save (see :mod:`embedlab.index.io`)
        .embedlab-data    owner marker, written first
        index.json, ids.npy, <array>.npy, <child>/ ...
      .embedlab.lock      writers hold an exclusive ``flock`` on it
      (anything else)     the user's files: never read, moved or deleted

A save writes a new ``data-…`` folder, fsyncs it, then replaces the manifest with
``os.replace`` — the one atomic step. Killed at any instant, ``PATH`` loads either the old
or the new index; the next save removes the unreferenced ``data-…`` folders it left (only
those holding the owner marker, or empty). Writers are serialised by the lock; a reader
that races a writer sees the manifest change and reads again.

Version 1 folders (arrays at the top level, written by embedlab 0.1) still load, and a save
with ``overwrite=True`` replaces them, deleting only the files their ``index.json`` lists.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from embedlab._io import atomic_write_bytes, canonical_checksum, fsync_dir
from embedlab.index._npy import IndexFileError, refuse_link

__all__ = [
    "FORMAT",
    "MANIFEST",
    "VERSION",
    "IndexFileError",
    "canonical_checksum",
    "check_save_target",
    "fsync_dir",
    "read_json_doc",
    "read_snapshot",
    "save_folder",
]

FORMAT = "embedlab-index"
VERSION = 2
MANIFEST = "index.json"
LOCK = ".embedlab.lock"
MARKER = ".embedlab-data"
_DATA = re.compile(r"^data-[0-9a-f]{16}$")
_TMP_MANIFEST = re.compile(r"^\.index\.json\..*\.tmp$")
_LEGACY = re.compile(r"^\.(?P<name>.+)\.(?P<kind>old|new)-[0-9a-z_]{8}$")
T = TypeVar("T")


def read_json_doc(path: Path) -> tuple[dict[str, Any], bytes]:
    """Parse the ``index.json`` at ``path``: an object with our format marker.

    Returns ``(doc, raw bytes)``. A self ``checksum`` (version 2) is verified.
    """
    refuse_link(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise IndexFileError(f"index file {path} is missing") from None
    except OSError as exc:
        raise IndexFileError(f"index file {path} cannot be read: {exc}") from None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise IndexFileError(f"{path} is corrupted: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise IndexFileError(f"{path} is not an embedlab index file (format != {FORMAT!r})")
    version = doc.get("version")
    if version not in (1, VERSION):
        raise IndexFileError(
            f"{path} has format version {version!r}; this embedlab reads versions 1 and {VERSION}"
        )
    if version == VERSION and doc.get("checksum") != canonical_checksum(doc):
        raise IndexFileError(
            f"{path} is corrupted or was altered: its checksum does not match its content"
        )
    return doc, data


# ------------------------------------------------------------------ what is in a folder
def _is_ours(entry: Path) -> bool:
    """An entry a save may remove: our lock, a stale manifest temp, a marked data folder."""
    name = entry.name
    if entry.is_symlink():
        return False
    if name == LOCK or (_TMP_MANIFEST.match(name) and entry.is_file()):
        return True
    if _DATA.match(name) and entry.is_dir():
        return (entry / MARKER).is_file() or not any(entry.iterdir())
    return False


def _manifest_doc(folder: Path) -> dict[str, Any] | None:
    """The manifest's JSON if ``folder/index.json`` carries our format marker, else None."""
    path = folder / MANIFEST
    if path.is_symlink() or not path.is_file():
        return None
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None


def _legacy_files(folder: Path, doc: dict[str, Any]) -> list[Path]:
    """Files a version-1 index at ``folder`` wrote (children first), from its index.json."""
    out: list[Path] = []
    children = doc.get("children")
    for name in children if isinstance(children, dict) else ():
        sub = folder / str(name)
        child = _manifest_doc(sub)
        if child is not None and child.get("version") == 1 and not sub.is_symlink():
            out.extend(_legacy_files(sub, child))
            out.append(sub)
    arrays = doc.get("arrays")
    for name in arrays if isinstance(arrays, dict) else ():
        out.append(folder / f"{name}.npy")
    out.append(folder / MANIFEST)
    return out


def check_save_target(path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Raise the error a save into ``path`` would raise, without writing anything.

    ``path`` must be absent, an empty folder, or hold an embedlab index (recognised by the
    format marker in its manifest; then ``overwrite`` must be true).
    """
    _check_target(Path(path), overwrite)


def _check_target(target: Path, overwrite: bool) -> dict[str, Any] | None:
    """Refuse a target that is not absent, empty, or ours; return its manifest if any."""
    if not target.exists():
        return None
    if not target.is_dir():
        raise ValueError(f"index path must be a folder, got the file {target}")
    doc = _manifest_doc(target)
    if doc is not None:
        if not overwrite:
            raise ValueError(
                f"index path {target} already holds an embedlab index; pass overwrite=True "
                "(--force on the command line) to replace it"
            )
        return doc
    foreign = sorted(p.name for p in target.iterdir() if not _is_ours(p))
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise ValueError(
            f"refusing to save an index into {target}: it is a non-empty folder that is not "
            f"an embedlab index (it holds {shown}); choose a new or empty folder"
        )
    return None


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder/.embedlab.lock`` (waits for other writers)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): writers are not serialised
        yield
        return
    with open(folder / LOCK, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _remove_ours(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def recover_legacy(target: Path) -> None:
    """Undo a version-1 save killed between its two renames; drop its temp folders.

    embedlab 0.1 swapped ``.NAME.new-*`` in for ``PATH`` via ``.NAME.old-*``; killed in
    between, ``PATH`` was missing. Such an ``.old-*`` folder (with our format marker) is
    renamed back; ``.new-*`` folders with our marker (or empty) are removed.
    """
    parent = target.parent
    if not parent.is_dir():
        return
    for entry in sorted(parent.iterdir()):
        m = _LEGACY.match(entry.name)
        if not m or m["name"] != target.name or entry.is_symlink() or not entry.is_dir():
            continue
        ours = _manifest_doc(entry) is not None
        if m["kind"] == "old" and ours and not target.exists():
            os.rename(entry, target)
        elif m["kind"] == "new" and (ours or not any(entry.iterdir())):
            shutil.rmtree(entry, ignore_errors=True)


def save_folder(target: Path, write: Callable[[Path], str], *, overwrite: bool) -> Path:
    """Write a new data folder with ``write(folder) -> sha256 of its index.json`` and swap it in.

    Returns the data folder now referenced by the manifest.

    Raises:
        ValueError: ``target`` is a file, a non-empty folder that is not an index, or an
            index while ``overwrite`` is false; nothing was written then.
    """
    recover_legacy(target)
    _check_target(target, overwrite)
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    committed = False
    try:
        with _locked(target):
            old = _check_target(target, overwrite)  # again: another writer may have won
            for entry in target.iterdir():
                if entry.name != LOCK and _is_ours(entry) and entry.name != _current(old):
                    _remove_ours(entry)
            data = target / f"data-{uuid.uuid4().hex[:16]}"
            data.mkdir()
            (data / MARKER).write_bytes(b"")
            try:
                sha = write(data)
                fsync_dir(data)
                doc: dict[str, Any] = {
                    "format": FORMAT,
                    "version": VERSION,
                    "data": data.name,
                    "sha256": sha,
                }
                doc["checksum"] = canonical_checksum(doc)
                text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
                atomic_write_bytes(target / MANIFEST, text.encode("utf-8"))
                committed = True
            except BaseException:
                shutil.rmtree(data, ignore_errors=True)
                raise
            fsync_dir(target)
            _drop_old(target, old)
    except BaseException:
        if created and not committed:  # leave no empty folder behind (only if still empty)
            with contextlib.suppress(OSError):
                (target / LOCK).unlink()
                target.rmdir()
        raise
    return data


def _current(doc: dict[str, Any] | None) -> str | None:
    if doc is None or doc.get("version") != VERSION:
        return None
    name = doc.get("data")
    return name if isinstance(name, str) and _DATA.match(name) else None


def _drop_old(target: Path, old: dict[str, Any] | None) -> None:
    if old is None:
        return
    if old.get("version") == VERSION:
        name = _current(old)
        if name is not None and _is_ours(target / name):
            _remove_ours(target / name)
        return
    for path in _legacy_files(target, old):  # version 1: only what its index.json lists
        if path.name == MANIFEST and path.parent == target:
            continue  # already replaced by the new manifest
        if path.is_symlink():
            continue
        if path.is_dir():
            with contextlib.suppress(OSError):
                path.rmdir()
        else:
            path.unlink(missing_ok=True)


def read_snapshot(target: Path, read: Callable[[Path, str | None], T]) -> T:
    """Call ``read(folder, expected_sha)`` on the data folder the manifest names.

    A version-1 folder is read in place (``expected_sha`` None). If the read fails while a
    writer replaced the manifest, it is retried on the new one (up to 5 times).
    """
    recover_legacy(target)
    if not target.is_dir():
        raise ValueError(f"index folder {target} does not exist")
    manifest = target / MANIFEST
    if not manifest.exists() and not manifest.is_symlink():
        raise ValueError(f"{target} is not an index folder: it has no {MANIFEST}")
    for attempt in range(5):
        doc, raw = read_json_doc(manifest)
        if doc["version"] == 1:
            return read(target, None)
        name, sha = doc.get("data"), doc.get("sha256")
        if not isinstance(name, str) or not _DATA.match(name) or not isinstance(sha, str):
            raise IndexFileError(f"{manifest} is corrupted: bad 'data' or 'sha256' entry")
        data = target / name
        try:
            refuse_link(data)
            return read(data, sha)
        except IndexFileError:
            try:
                changed = manifest.read_bytes() != raw
            except OSError:
                changed = True
            if not changed or attempt == 4:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
