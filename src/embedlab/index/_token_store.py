"""Packed document vectors of a multi-vector index on disk, with exact Chamfer re-ranking.

Part of :mod:`embedlab.index.chamfer` (which re-exports :class:`TokenStore`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from embedlab._validation import check_int
from embedlab.index._chamfer_kernels import chamfer_scores
from embedlab.index._rows import topk_rows
from embedlab.index._token_sets import PackedSets, gather_index
from embedlab.index._types import F32, I64
from embedlab.index._workfile import WorkingFile, check_mapped

__all__ = ["TokenStore"]

_BLAS: list[Any] = []  # a cached threadpoolctl.ThreadpoolController (when installed)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _blas_single_thread() -> Iterator[None]:
    """One BLAS thread while re-ranking: one small matmul per query is slower multi-threaded.

    On the shared 2-core machine a ``(6, 384) @ (384, 3000)`` product took 52 ms with
    OpenBLAS' default threads and 1 ms with one (thread wake-ups dominate). Uses threadpoolctl
    when it is installed, else leaves the threads alone.
    """
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            _BLAS.append(None)
        else:
            _BLAS.append(ThreadpoolController())
    if _BLAS[0] is None:  # pragma: no cover
        yield
        return
    with _BLAS[0].limit(limits=1, user_api="blas"):
        yield


class TokenStore(WorkingFile):
    """Packed document vectors in a float32 file mapped with ``numpy.memmap``; offsets in RAM.

    Same file life cycle as :class:`embedlab.index.rerank.Rerank`: a working raw file in
    ``storage`` (default: a private temporary folder, deleted with the store); after the
    owning index is saved the store maps the saved ``tokens.npy`` read-only and drops its
    working file; adding or removing afterwards copies the rows into a new working file.

    Args:
        dim: vector dimension.
        storage: folder for the working file (default: a private temporary folder).

    Example:
        >>> import numpy as np
        >>> from embedlab.index.chamfer import TokenStore, pack_sets
        >>> store = TokenStore(2)
        >>> store.append(pack_sets([np.eye(2), np.ones((1, 2))]))
        >>> scores, rows = store.rerank(np.array([[1.0, 0.0]], np.float32), np.array([0, 1]), 2)
        >>> rows.tolist(), scores.tolist()
        ([0, 1], [1.0, 1.0])
    """

    file_prefix = "tokens"

    def __init__(self, dim: int, *, storage: str | Path | None = None) -> None:
        self.dim = check_int("dim", dim, min_value=1)
        self._offsets: I64 = np.zeros(1, np.int64)
        self._init_working_file(storage)

    def __len__(self) -> int:
        return int(self._offsets.shape[0]) - 1

    @property
    def n_vectors(self) -> int:
        """Number of stored vectors, over all sets."""
        return int(self._offsets[-1])

    @property
    def offsets(self) -> I64:
        """``(n + 1,)`` int64 set offsets, a read-only view: set ``i`` is
        ``vectors[offsets[i]:offsets[i + 1]]``.
        """
        view = self._offsets.view()
        view.flags.writeable = False
        return view

    @property
    def vectors(self) -> np.ndarray:
        """The packed vectors ``(n_vectors, dim)`` (a read-only memory map once non-empty)."""
        return self._vectors

    @property
    def path(self) -> Path | None:
        """The working file, or ``None`` while the vectors are a saved file (or none)."""
        return self._path

    def ram_bytes(self) -> int:
        """Bytes held in RAM: the offsets (the vectors are in the file)."""
        return int(self._offsets.nbytes)

    def disk_bytes(self) -> int:
        """Bytes of the vectors file: ``4 * dim`` per stored vector."""
        return self.n_vectors * self.dim * 4

    # -- content
    def append(self, sets: PackedSets) -> None:
        """Append the sets (float32 ``(total, dim)`` vectors, validated by the caller)."""
        if sets.dim != self.dim:
            raise ValueError(f"sets must have dim={self.dim}, got {sets.dim}")
        if not len(sets):
            return
        path = self._writable()
        with open(path, "ab") as fh:
            fh.write(np.ascontiguousarray(sets.vectors, dtype=np.float32).data)
        self._offsets = np.concatenate([self._offsets, self._offsets[-1] + sets.offsets[1:]])
        self._map(self.n_vectors)

    def remove(self, rows: I64) -> None:
        """Delete the sets ``rows`` (sorted, unique), keeping the others in order."""
        keep = np.ones(len(self), dtype=bool)
        keep[rows] = False
        kept_rows = np.flatnonzero(keep)
        index, offsets = gather_index(self._offsets, kept_rows)
        self._keep_rows(index)
        self._offsets = offsets

    def gather(self, rows: I64) -> PackedSets:
        """The sets ``rows`` read from the file (only their vectors are read)."""
        index, offsets = gather_index(self._offsets, np.asarray(rows, dtype=np.int64))
        return PackedSets(self._rows(index), offsets)

    def rerank(self, query: F32, rows: I64, k: int) -> tuple[F32, I64]:
        """Exact Chamfer of one query ``(m, dim)`` against the sets ``rows``; best ``k``.

        Returns ``(scores (min(k, c),), rows (min(k, c),))``, ties broken by the lower row.
        """
        rows = np.unique(np.asarray(rows, dtype=np.int64))  # sorted reads
        if rows.size == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        cand = self.gather(rows)
        s = chamfer_scores(PackedSets(query, np.array([0, query.shape[0]], np.int64)), cand)
        ts, cols = topk_rows(s, k)
        return ts[0], rows[cols[0]]

    def rerank_many(
        self, queries: PackedSets, candidates: Sequence[I64], k: int
    ) -> tuple[F32, I64]:
        """:meth:`rerank` for each query set with its own candidate rows.

        Returns ``(scores (n_q, k), rows (n_q, k))``, ``-inf`` / ``-1`` where a query has
        fewer than ``k`` candidates.
        """
        n_q = len(queries)
        out_s = np.full((n_q, k), -np.inf, np.float32)
        out_p = np.full((n_q, k), -1, np.int64)

        def run(chunk: range) -> None:
            for i in chunk:
                s, rows = self.rerank(queries[i], candidates[i], k)
                out_s[i, : s.size] = s
                out_p[i, : s.size] = rows

        # queries in parallel, one BLAS thread each (numpy releases the GIL in matmul,
        # reduceat and gathers); 106 -> 125 queries/s on the shared 2 cores (dbpedia, C=100)
        workers = max(1, min(_cpu_count(), n_q))
        chunks = [range(w, n_q, workers) for w in range(workers)]
        with _blas_single_thread():
            if workers == 1:
                run(chunks[0])
            else:
                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(run, chunks))
        return out_s, out_p

    # -- persistence
    def state(self) -> dict[str, np.ndarray]:
        """The arrays to save: ``tokens`` ``(n_vectors, dim)`` float32 and ``token_offsets``
        ``(n + 1,)`` int64; ValueError if the mapped file was truncated meanwhile.
        """
        check_mapped(self._vectors)
        return {"tokens": self._vectors, "token_offsets": self._offsets}

    def restore(self, tokens: np.ndarray, offsets: np.ndarray, where: Path) -> None:
        """Use saved arrays (``tokens`` typically a read-only memory map)."""
        offsets = np.asarray(offsets)
        if (
            offsets.ndim != 1
            or offsets.shape[0] < 1
            or offsets.dtype != np.int64
            or int(offsets[0]) != 0
            or bool((np.diff(offsets) <= 0).any())
        ):
            raise ValueError(f"{where / 'token_offsets.npy'} must hold increasing int64 offsets")
        if tokens.dtype != np.float32 or tokens.shape != (int(offsets[-1]), self.dim):
            raise ValueError(
                f"{where / 'tokens.npy'} must hold float32 ({int(offsets[-1])}, {self.dim}), "
                f"got {tokens.dtype} {tokens.shape}"
            )
        self._set_file(None, None)
        self._vectors = tokens
        self._offsets = offsets.astype(np.int64, copy=True)

    def after_save(self, folder: Path) -> None:
        """Map the saved ``tokens.npy`` and drop the working file."""
        if self.n_vectors:
            self._vectors = np.load(folder / "tokens.npy", mmap_mode="r", allow_pickle=False)
        self._set_file(None, None)
