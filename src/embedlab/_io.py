"""File helpers: atomic writes (a reader never sees a half-written file, a failure keeps the
old one), directory fsync, checksums of JSON documents and files, gzip-or-plain reading."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import xxhash

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "canonical_checksum",
    "file_xxh3",
    "fsync_dir",
    "open_maybe_gzip",
]

_GZIP_MAGIC = b"\x1f\x8b"
_HASH_BLOCK = 1 << 23


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync, ``os.replace``.

    The folder is created if missing. An existing file keeps its permissions;
    a new one gets 0644 (``mkstemp`` alone would make it private).
    """
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """:func:`atomic_write_bytes` with a writer: ``write(fh)`` streams the content."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text (newlines written as given)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (new names, renames) to disk; a no-op where unsupported."""
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


def canonical_checksum(doc: dict[str, Any]) -> str:
    """sha256 of ``doc`` without its ``checksum`` key, in a canonical JSON form."""
    body = {k: v for k, v in doc.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def file_xxh3(path: Path) -> str:
    """XXH3-128 hex digest of a file's bytes, read in blocks (constant memory)."""
    h = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def open_maybe_gzip(path: Path) -> BinaryIO:
    """``path`` opened for binary reading, decompressed on the fly if it is gzip (by magic)."""
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")
