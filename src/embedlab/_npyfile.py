"""Reading ``.npy`` headers without pickle, for files the library reads in parts.

Shared by the index files (:mod:`embedlab.index._npy`) and the vector shards
(:mod:`embedlab.data.shards`): both check the header and the file size before reading or
mapping anything, so a truncated file is a clear error, never a ``SIGBUS``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["NpyHeader", "read_npy_header"]


@dataclass(frozen=True)
class NpyHeader:
    """What a ``.npy`` header says: ``shape``, ``dtype``, the data ``offset`` and the raw
    header bytes (``raw``, for checksums); ``nbytes`` of data; ``file_size`` on disk."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    offset: int
    raw: bytes
    file_size: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def read_npy_header(fh: BinaryIO, path: Path) -> NpyHeader:
    """Parse the header of the open ``.npy`` file ``fh`` (positioned at 0).

    Raises:
        ValueError: not a ``.npy`` file, a pickled (object) or Fortran-ordered array; the
            message names ``path``.
    """
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except Exception as exc:  # numpy's header parser also raises tokenize / syntax errors
        raise ValueError(f"{path} is not a readable .npy file: {exc}") from None
    if dtype.hasobject:
        raise ValueError(f"{path} holds Python objects (it would need pickle); refusing it")
    if fortran:
        raise ValueError(f"{path} holds a Fortran-ordered array; save it C-ordered")
    offset = fh.tell()
    fh.seek(0)
    raw = fh.read(offset)
    size = os.fstat(fh.fileno()).st_size
    return NpyHeader(tuple(int(s) for s in shape), dtype, offset, raw, size)
