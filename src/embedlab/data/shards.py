"""Vectors in ``.npy`` shards: read in bounded chunks, sampled, written.

A *shard folder* holds ``*.npy`` files of shape ``(n_i, dim)``, one dtype and one ``dim`` for
all, read in file-name order (a single ``.npy`` file works too). Chunks are read with plain
file reads (no memory map), so a build over 10M vectors holds one chunk at a time and its
RSS does not grow with the input; a file shorter than its header says is an error naming it.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_npy_shards(d, np.ones((10, 4), np.float32), rows_per_shard=4)
    3
    >>> [c.shape for c in iter_npy_shards(d, chunk_rows=6)]
    [(4, 4), (4, 4), (2, 4)]
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from embedlab._io import atomic_write
from embedlab._npyfile import NpyHeader, read_npy_header
from embedlab._validation import check_int

__all__ = [
    "NpyShard",
    "iter_npy_shards",
    "list_npy_shards",
    "sample_npy_shards",
    "write_npy_shards",
]


@dataclass(frozen=True)
class NpyShard:
    """One ``.npy`` shard: ``path``, ``rows``, ``dim``, ``dtype`` and its header."""

    path: Path
    header: NpyHeader

    @property
    def rows(self) -> int:
        """Number of rows (``shape[0]`` in the header)."""
        return self.header.shape[0]

    @property
    def dim(self) -> int:
        """Row width (``shape[1]`` in the header)."""
        return self.header.shape[1]

    @property
    def dtype(self) -> np.dtype[Any]:
        """Element dtype, from the header."""
        return self.header.dtype


def _shard(path: Path) -> NpyShard:
    if path.is_symlink() and not path.exists():
        raise ValueError(f"vectors shard {path} is a broken link")
    with open(path, "rb") as fh:
        header = read_npy_header(fh, path)
    if len(header.shape) != 2:
        raise ValueError(f"vectors shard {path} must have shape (n, dim), got {header.shape}")
    if header.dtype.kind not in "fiu":
        raise ValueError(f"vectors shard {path} must hold numbers, got dtype {header.dtype}")
    if header.file_size < header.offset + header.nbytes:
        raise ValueError(
            f"vectors shard {path} is truncated: {header.file_size} bytes, its header needs "
            f"{header.offset + header.nbytes}"
        )
    return NpyShard(path, header)


def list_npy_shards(path: str | os.PathLike[str]) -> list[NpyShard]:
    """The shards of ``path`` (a ``.npy`` file or a folder of them), checked for one shape.

    Raises:
        ValueError: ``path`` is missing or holds no ``.npy``; a shard is unreadable,
            truncated, not 2-D, or its ``dim`` / ``dtype`` differs from the first (named).
    """
    root = Path(path)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix == ".npy" and not p.is_dir())
        if not files:
            raise ValueError(f"vectors folder {root} holds no .npy files")
    else:
        raise ValueError(f"vectors path {root} does not exist")
    shards = [_shard(f) for f in files]
    first = shards[0]
    for s in shards[1:]:
        if s.dim != first.dim or s.dtype != first.dtype:
            raise ValueError(
                f"vectors shard {s.path} holds {s.dtype} (n, {s.dim}) but {first.path.name} "
                f"holds {first.dtype} (n, {first.dim}); every shard needs the same dim and dtype"
            )
    return shards


def iter_npy_shards(
    path: str | os.PathLike[str], *, chunk_rows: int = 65536
) -> Iterator[np.ndarray]:
    """Chunks ``(<= chunk_rows, dim)`` of every shard in order (one chunk in memory)."""
    chunk_rows = check_int("chunk_rows", chunk_rows, min_value=1)
    for shard in list_npy_shards(path):
        row_bytes = shard.dim * shard.dtype.itemsize
        with open(shard.path, "rb") as fh:
            fh.seek(shard.header.offset)
            for start in range(0, shard.rows, chunk_rows):
                n = min(chunk_rows, shard.rows - start)
                out = np.empty((n, shard.dim), dtype=shard.dtype)
                got = fh.readinto(memoryview(out.reshape(-1).view(np.uint8)))  # type: ignore[arg-type]
                if got != n * row_bytes:
                    raise ValueError(f"vectors shard {shard.path} shrank while it was read")
                yield out
                del out  # one chunk alive while the next is read (the caller's, if it kept it)


def sample_npy_shards(path: str | os.PathLike[str], n: int, *, seed: int = 0) -> np.ndarray:
    """``min(n, total)`` rows drawn uniformly without replacement across all shards, in order.

    Reads only the sampled rows (``(n, dim)`` in the shards' dtype), one ``pread`` each
    (no memory map: touching scattered rows of a mapped file would pull whole page runs of
    it into this process' resident memory), for training a quantiser on a sample of a
    collection too large to hold.
    """
    n = check_int("n", n, min_value=1)
    shards = list_npy_shards(path)
    total = sum(s.rows for s in shards)
    rng = np.random.default_rng(check_int("seed", seed, min_value=0))
    picks = np.sort(rng.choice(total, size=min(n, total), replace=False))
    out = np.empty((picks.size, shards[0].dim), dtype=shards[0].dtype)
    start, filled = 0, 0
    for shard in shards:
        mine = picks[(picks >= start) & (picks < start + shard.rows)] - start
        row_bytes = shard.dim * shard.dtype.itemsize
        with open(shard.path, "rb") as fh:
            for row in mine.tolist():
                raw = os.pread(fh.fileno(), row_bytes, shard.header.offset + row * row_bytes)
                if len(raw) != row_bytes:
                    raise ValueError(f"vectors shard {shard.path} shrank while it was read")
                out[filled] = np.frombuffer(raw, dtype=shard.dtype)
                filled += 1
        start += shard.rows
    return out


def write_npy_shards(
    folder: str | os.PathLike[str],
    x: np.ndarray,
    *,
    rows_per_shard: int = 1 << 20,
    prefix: str = "part",
) -> int:
    """Write ``x (n, dim)`` as ``prefix-00000.npy``, ... in ``folder``; returns the count.

    Each shard is written atomically; existing shards of the same names are replaced, other
    files are left alone.
    """
    rows_per_shard = check_int("rows_per_shard", rows_per_shard, min_value=1)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for count, start in enumerate(range(0, max(1, x.shape[0]), rows_per_shard), start=1):
        part = np.ascontiguousarray(x[start : start + rows_per_shard])

        def save(fh: BinaryIO, part: np.ndarray = part) -> None:
            np.save(fh, part, allow_pickle=False)

        atomic_write(out / f"{prefix}-{count - 1:05d}.npy", save)
    return count
