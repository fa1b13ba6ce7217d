"""``.npy`` files of a saved index: written and read in one pass with a block checksum.

The checksum of a file is a *block sha256*: sha256 of the ``.npy`` header, then sha256 of
each 16 MiB block of the data, combined as sha256 of the concatenated digests. Blocks are
hashed on a thread pool while the next block is read, so verifying a file costs little more
than reading it (hashlib releases the GIL on large buffers).

Reading refuses symbolic links (an index folder never contains links), checks the header
against the entry recorded in ``index.json`` and the file size against the header before
anything is allocated or mapped, so a truncated file is an error, never a ``SIGBUS``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BLOCK", "IndexFileError", "digest_stream", "read_npy", "refuse_link", "write_npy"]

BLOCK = 16 << 20
_POOL: ThreadPoolExecutor | None = None


class IndexFileError(ValueError):
    """A file of a saved index is missing, altered, truncated or not what index.json says."""


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2)))
    return _POOL


def _reset_pool() -> None:  # a forked child has none of the parent's pool threads
    global _POOL
    _POOL = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_pool)


def _sha(block: Any) -> bytes:
    return hashlib.sha256(block).digest()


def digest_stream(header: bytes, blocks: Iterator[Any]) -> str:
    """The block sha256 of ``header`` and the data ``blocks`` (each at most :data:`BLOCK`).

    Each block is hashed on the pool as soon as it is yielded, so the producer (a read or a
    write) overlaps the hashing. At most ``2 * workers`` blocks are in flight.
    """
    pool = _pool()
    limit = 2 * (pool._max_workers or 2)
    done: list[bytes] = [_sha(header)]
    pending: list[Future[bytes]] = []
    for block in blocks:
        pending.append(pool.submit(_sha, block))
        if len(pending) >= limit:
            done.append(pending.pop(0).result())
    done.extend(f.result() for f in pending)
    return hashlib.sha256(b"".join(done)).hexdigest()


def refuse_link(path: Path) -> None:
    """Raise if ``path`` is a symbolic link (index folders never contain links)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        raise IndexFileError(f"index file {path} is missing") from None
    if stat.S_ISLNK(mode):
        raise IndexFileError(
            f"index file {path} is a symbolic link; an index folder may not contain links "
            "(it could point outside the folder)"
        )


def _header_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_2_0(buf, np.lib.format.header_data_from_array_1_0(arr))
    return buf.getvalue()


def _flat_bytes(arr: np.ndarray) -> memoryview:
    flat: Any = np.ascontiguousarray(arr).reshape(-1).view(np.uint8)
    return memoryview(flat)


def write_npy(path: Path, arr: np.ndarray) -> str:
    """Write ``arr`` as a ``.npy`` file (fsynced); return its block sha256."""
    if arr.dtype.hasobject:
        raise TypeError(f"array {path.name} has dtype object; it cannot be saved")
    header = _header_bytes(arr)
    data = _flat_bytes(arr)

    with open(path, "wb") as fh:
        fh.write(header)

        def blocks() -> Iterator[memoryview]:
            for start in range(0, len(data), BLOCK):
                block = data[start : start + BLOCK]
                fh.write(block)
                yield block

        digest = digest_stream(header, blocks())
        fh.flush()
        os.fsync(fh.fileno())
    return digest


def _read_header(fh: Any, path: Path) -> tuple[bytes, tuple[int, ...], np.dtype[Any], int]:
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as exc:  # numpy's header parser also raises tokenize / syntax errors
        raise IndexFileError(f"index file {path} is not a readable .npy file: {exc}") from None
    if fortran or dtype.hasobject:
        raise IndexFileError(f"index file {path} holds an array this format never writes")
    offset = fh.tell()
    fh.seek(0)
    header = fh.read(offset)
    return header, tuple(int(s) for s in shape), dtype, offset


def read_npy(path: Path, entry: dict[str, Any], *, mmap: bool, verify: bool) -> np.ndarray:
    """Read (or memory-map) the array ``path`` described by its ``index.json`` ``entry``.

    ``entry`` holds ``shape``, ``dtype`` and ``sha256`` (the block sha256). With ``verify``
    the data is hashed while it is read and compared with ``sha256``; without it, only the
    header and the file size are checked.

    Raises:
        IndexFileError: the file is missing, a link, truncated, altered, or its header does
            not match ``entry``; the message names the file.
    """
    refuse_link(path)
    try:
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise IndexFileError(f"index file {path} cannot be read: {exc}") from None
    with fh:
        header, shape, dtype, offset = _read_header(fh, path)
        if list(shape) != entry.get("shape") or dtype.str != entry.get("dtype"):
            raise IndexFileError(
                f"index file {path} is corrupted or was altered: it holds {dtype.str} "
                f"{list(shape)}, index.json says {entry.get('dtype')} {entry.get('shape')}"
            )
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        size = os.fstat(fh.fileno()).st_size
        if size != offset + nbytes:
            raise IndexFileError(
                f"index file {path} is corrupted or was altered: {size} bytes where its "
                f"header needs {offset + nbytes} (truncated or extended)"
            )
        arr: np.ndarray
        if mmap and nbytes:
            arr = np.memmap(path, dtype=dtype, mode="r", shape=shape, offset=offset)
            if verify:

                def file_blocks() -> Iterator[bytes]:
                    fh.seek(offset)
                    while block := fh.read(BLOCK):
                        yield block

                digest = digest_stream(header, file_blocks())
            else:
                digest = None
        else:
            arr = np.empty(shape, dtype=dtype)
            view = _flat_bytes(arr) if nbytes else memoryview(b"")

            def read_blocks() -> Iterator[memoryview]:
                for start in range(0, nbytes, BLOCK):
                    block = view[start : start + BLOCK]
                    got = fh.readinto(block)
                    if got != len(block):
                        raise IndexFileError(f"index file {path} shrank while it was read")
                    yield block

            if verify:
                digest = digest_stream(header, read_blocks())
            else:
                for _ in read_blocks():
                    pass
                digest = None
    if digest is not None and digest != entry.get("sha256"):
        raise IndexFileError(
            f"index file {path} is corrupted or was altered: its checksum does not match index.json"
        )
    return arr
