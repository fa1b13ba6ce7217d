"""Float32 rows kept on disk: a raw working file mapped with ``numpy.memmap``.

Shared by the stages that keep full vectors out of RAM (:class:`~embedlab.index.Rerank`,
the token store of MUVERA's ``Rerank(Chamfer)``). The working file lives in ``storage``
(default: a private temporary folder deleted with its owner); after the owner is saved it
maps the saved ``.npy`` instead and drops the working file.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import weakref
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

__all__ = ["COPY_ROWS", "WorkingFile", "check_mapped"]

#: rows copied per write when a working file is (re)built
COPY_ROWS = 65536


def check_mapped(arr: np.ndarray) -> None:
    """Raise if the file behind the memory map ``arr`` is now shorter than the map.

    Reading a page past the end of a truncated mapped file kills the process with ``SIGBUS``;
    this checks the file's current size (``fstat`` on the map's own descriptor, so it sees
    the mapped file even if its name now points elsewhere) first. Plain arrays pass.
    """
    mm = getattr(arr, "_mmap", None)
    if mm is None:
        return
    need = int(getattr(arr, "offset", 0)) + int(arr.nbytes)
    try:
        size = int(mm.size())
    except (OSError, ValueError):  # pragma: no cover - closed map
        return
    if size < need:
        raise ValueError(
            f"index file {getattr(arr, 'filename', '?')} was truncated to {size} bytes while "
            f"the index used it ({need} needed): another program changed it; reload the index "
            "from an intact copy"
        )


def _cleanup(path: Path | None, tmpdir: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)
    if tmpdir is not None:
        shutil.rmtree(tmpdir, ignore_errors=True)


class WorkingFile:
    """Mixin holding ``_vectors`` ``(n, dim)`` float32 in a memory-mapped working file."""

    #: file name prefix, e.g. ``"vectors"`` -> ``vectors-<hex>.f32``
    file_prefix: ClassVar[str] = "vectors"
    dim: int
    storage: Path | None
    _vectors: np.ndarray
    _path: Path | None
    _finalizer: weakref.finalize[Any, Any] | None

    def _init_working_file(self, storage: str | Path | None) -> None:
        self.storage = None if storage is None else Path(storage)
        self._vectors = np.zeros((0, self.dim), np.float32)
        self._path = None
        self._finalizer = None

    def _writable(self) -> Path:
        """The working file, created (with the current rows copied in) when missing."""
        if self._path is not None:
            return self._path
        tmpdir = None
        if self.storage is None:
            tmpdir = Path(tempfile.mkdtemp(prefix=f"embedlab-{self.file_prefix}-"))
            folder = tmpdir
        else:
            folder = self.storage
            folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.file_prefix}-{uuid.uuid4().hex[:12]}.f32"
        with open(path, "wb") as fh:
            for s in range(0, self._vectors.shape[0], COPY_ROWS):
                fh.write(np.ascontiguousarray(self._vectors[s : s + COPY_ROWS]).data)
        self._set_file(path, tmpdir)
        return path

    def _set_file(self, path: Path | None, tmpdir: Path | None) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._path = path
        self._finalizer = weakref.finalize(self, _cleanup, path, tmpdir) if path else None

    def _rows(self, index: np.ndarray) -> np.ndarray:
        """``_vectors[index]`` read into RAM, after checking the mapped file is intact."""
        check_mapped(self._vectors)
        return np.asarray(self._vectors[index], dtype=np.float32)

    def _keep_rows(self, index: np.ndarray) -> None:
        """Rewrite the working file with only the rows ``index`` (in that order), in a new
        file; the old file is released once its rows are copied."""
        check_mapped(self._vectors)
        old, old_finalizer = self._vectors, self._finalizer
        self._finalizer = None  # keep the old file until its rows are copied
        self._path = None
        self._vectors = np.zeros((0, self.dim), np.float32)
        path = self._writable()
        with open(path, "ab") as fh:
            for s in range(0, index.size, COPY_ROWS):
                fh.write(np.ascontiguousarray(old[index[s : s + COPY_ROWS]]).data)
        del old
        if old_finalizer is not None:
            old_finalizer()
        self._map(int(index.size))

    def _map(self, n: int) -> None:
        assert self._path is not None
        if n == 0:
            self._vectors = np.zeros((0, self.dim), np.float32)
        else:
            self._vectors = np.memmap(self._path, dtype=np.float32, mode="r", shape=(n, self.dim))
