"""Chamfer similarity of vector sets, exact Chamfer search and the single-vector heuristic.

Late-interaction models (ColBERT) embed a text as a SET of token vectors; two sets are
compared by the Chamfer similarity (MaxSim), as in the MUVERA paper (Dhulipala et al.,
NeurIPS 2024)::

    Chamfer(Q, P) = sum_{q in Q} max_{p in P} <q, p>

It is not symmetric: the sum runs over the query's vectors.

Sets are kept PACKED: one ``(total, dim)`` matrix of all vectors, set after set, and
``offsets (n + 1,)`` with set ``i`` in rows ``offsets[i]:offsets[i + 1]`` (:class:`PackedSets`).
One query against many documents is then one matmul ``(m, dim) @ (dim, total)`` followed by a
segment max (``np.maximum.reduceat`` over the document boundaries) and a sum over the query's
rows; no Python loop runs per vector or per document.

Also here:

- :func:`chamfer_search`: exact (brute-force) Chamfer top-k, blocked over documents and queries.
- :class:`TokenStore`: the packed document vectors of an index in a float32 file mapped with
  ``numpy.memmap`` (the bi-granular layout of ``Rerank``), with exact Chamfer re-ranking of
  candidate documents that reads only their rows.
- :class:`TokenHeuristic`: the baseline the MUVERA paper compares against (PLAID / ColBERT
  v2 candidate generation in its simplest form): every document vector goes into a
  single-vector index with a vector -> document map; each query vector fetches its ``k'``
  nearest document vectors; the union of their documents is re-ranked with exact Chamfer.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedlab._validation import check_int
from embedlab.index._base import (
    F32,
    I64,
    MAX_PADDING,
    l2_normalize,
    pad_results,
    topk_rows,
)
from embedlab.index._workfile import COPY_ROWS, WorkingFile, check_mapped

__all__ = [
    "PackedSets",
    "TokenStore",
    "chamfer",
    "chamfer_matrix",
    "chamfer_search",
    "pack_sets",
]

# float32 entries of one block of the (query vectors x document vectors) score matrix: 64 MiB.
_BLOCK = 1 << 24
_DOC_BLOCK_ROWS = 1 << 15  # document vectors per block of an exact scan
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


@dataclass(frozen=True)
class PackedSets:
    """``n`` vector sets packed in one matrix.

    Args:
        vectors: ``(total, dim)`` float32, the sets one after the other.
        offsets: ``(n + 1,)`` int64, ``offsets[0] == 0``, ``offsets[-1] == total``; set ``i``
            is ``vectors[offsets[i]:offsets[i + 1]]`` and holds at least one vector.

    Use :func:`pack_sets` to build one from a list of matrices (it validates).

    Example:
        >>> import numpy as np
        >>> p = pack_sets([np.ones((2, 3)), np.zeros((1, 3))])
        >>> len(p), p.dim, p.lengths.tolist(), p[1].shape
        (2, 3, [2, 1], (1, 3))
    """

    vectors: F32
    offsets: I64

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.vectors.shape[1])

    @property
    def lengths(self) -> I64:
        """Vectors per set ``(n,)``."""
        return np.diff(self.offsets)

    def __getitem__(self, i: int) -> F32:
        return self.vectors[self.offsets[i] : self.offsets[i + 1]]

    def to_list(self) -> list[F32]:
        """The sets as a list of ``(m_i, dim)`` views."""
        return [self[i] for i in range(len(self))]

    def select(self, rows: np.ndarray) -> PackedSets:
        """The sets ``rows`` (any order, repeats allowed), packed anew (copies the vectors)."""
        rows = np.asarray(rows, dtype=np.int64)
        index, offsets = _gather_index(self.offsets, rows)
        return PackedSets(np.ascontiguousarray(self.vectors[index]), offsets)

    def normalized(self) -> PackedSets:
        """Every vector scaled to unit L2 norm (all-zero vectors stay zero)."""
        return PackedSets(l2_normalize(self.vectors), self.offsets)


def _gather_index(offsets: I64, rows: I64) -> tuple[I64, I64]:
    """Row indices into the packed matrix for the sets ``rows`` and the new offsets."""
    lengths = offsets[rows + 1] - offsets[rows]
    new_offsets = np.zeros(rows.shape[0] + 1, np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    # index of vector j of the result: start of its set + (j - start of its set in the result)
    index = np.arange(int(new_offsets[-1]), dtype=np.int64)
    index += np.repeat(offsets[rows] - new_offsets[:-1], lengths)
    return index, new_offsets


def pack_sets(sets: Any, dim: int | None = None, *, name: str = "sets") -> PackedSets:
    """Validate vector sets and pack them (see :class:`PackedSets`).

    Args:
        sets: a sequence of ``(m_i, dim)`` arrays (numpy, torch or nested lists), a
            ``(n, m, dim)`` array (``n`` sets of ``m`` vectors), a :class:`PackedSets` or any
            object with packed ``vectors`` and ``offsets`` (``data.multivector.TokenSets``).
        dim: required vector dimension (default: that of the first set).
        name: what the sets are, for error messages (``"documents"``, ``"queries"``).

    Returns:
        :class:`PackedSets` with float32 vectors.

    Raises:
        TypeError: ``sets`` is not a sequence of arrays, or holds non-numbers.
        ValueError: a set is empty, has the wrong number of columns, or holds NaN / inf; the
            message names the set (``documents[3] must hold at least one vector``).
    """
    if isinstance(sets, PackedSets):
        return _check_packed(sets, dim, name)
    if hasattr(sets, "vectors") and hasattr(sets, "offsets"):  # e.g. data.multivector.TokenSets
        return _check_packed(
            PackedSets(np.asarray(sets.vectors), np.asarray(sets.offsets)), dim, name
        )
    if isinstance(sets, np.ndarray) and sets.ndim == 3:
        sets = list(sets)
    elif isinstance(sets, np.ndarray):
        raise ValueError(
            f"{name} must be a sequence of (m, dim) arrays or an (n, m, dim) array, got one "
            f"array of shape {sets.shape}; wrap a single set in a list"
        )
    if isinstance(sets, (str, bytes)) or not isinstance(sets, (Sequence, np.ndarray)):
        raise TypeError(
            f"{name} must be a sequence of (m, dim) arrays (one per set), got {type(sets).__name__}"
        )
    mats: list[np.ndarray] = []
    for i, s in enumerate(sets):
        arr = np.asarray(s.detach().cpu().numpy() if hasattr(s, "detach") else s)
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"{name}[{i}] must hold real numbers, got dtype {arr.dtype}")
        if arr.ndim != 2 or (dim is not None and arr.shape[1] != dim):
            want = "(m, dim)" if dim is None else f"(m, {dim})"
            raise ValueError(f"{name}[{i}] must have shape {want}, got shape {arr.shape}")
        if dim is None:
            dim = int(arr.shape[1])
            if dim < 1:
                raise ValueError(f"{name}[{i}] must have at least one column, got {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name}[{i}] must hold at least one vector, got shape {arr.shape}")
        mats.append(arr)
    if dim is None:
        raise ValueError(f"{name} must hold at least one set to infer dim, got none")
    offsets = np.zeros(len(mats) + 1, np.int64)
    np.cumsum([m.shape[0] for m in mats], out=offsets[1:])
    with np.errstate(over="ignore"):
        vectors = np.concatenate(mats, dtype=np.float32) if mats else np.zeros((0, dim), np.float32)
    _check_finite_sets(name, vectors, offsets)
    return PackedSets(vectors, offsets)


def _check_finite_sets(name: str, vectors: np.ndarray, offsets: I64) -> None:
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        i = int(np.searchsorted(offsets, row, side="right")) - 1
        raise ValueError(
            f"{name}[{i}] must be finite, got NaN or inf in row {row - int(offsets[i])}"
        )


def _check_packed(p: PackedSets, dim: int | None, name: str) -> PackedSets:
    offsets = np.asarray(p.offsets)
    if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets.dtype.kind not in "iu":
        raise ValueError(
            f"{name}.offsets must be a 1-d integer array of n + 1 set boundaries, "
            f"got {offsets.dtype} {offsets.shape}"
        )
    offsets = offsets.astype(np.int64, copy=False)
    vectors = np.asarray(p.vectors)
    if vectors.ndim != 2 or (dim is not None and vectors.shape[1] != dim):
        want = "(total, dim)" if dim is None else f"(total, {dim})"
        raise ValueError(f"{name}.vectors must have shape {want}, got shape {vectors.shape}")
    if vectors.dtype.kind not in "fiu":
        raise TypeError(f"{name}.vectors must hold real numbers, got dtype {vectors.dtype}")
    if int(offsets[0]) != 0 or int(offsets[-1]) != vectors.shape[0]:
        raise ValueError(
            f"{name}.offsets must start at 0 and end at {vectors.shape[0]} (the vector count), "
            f"got {int(offsets[0])} and {int(offsets[-1])}"
        )
    lengths = np.diff(offsets)
    if lengths.size and bool((lengths <= 0).any()):
        first = int(np.argmax(lengths <= 0))
        raise ValueError(
            f"{name}[{first}] must hold at least one vector, got {int(lengths[first])}"
        )
    with np.errstate(over="ignore"):
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    _check_finite_sets(name, vectors, offsets)
    return PackedSets(vectors, offsets)


# -- scoring -----------------------------------------------------------------------------------


def _doc_blocks(offsets: I64, max_rows: int) -> list[tuple[int, int]]:
    """Split documents into runs ``[a, b)`` holding about ``max_rows`` vectors (>= 1 doc)."""
    n = offsets.shape[0] - 1
    out: list[tuple[int, int]] = []
    a = 0
    while a < n:
        b = int(np.searchsorted(offsets, offsets[a] + max_rows, side="right")) - 1
        b = min(max(b, a + 1), n)
        out.append((a, b))
        a = b
    return out


def _query_blocks(offsets: I64, max_rows: int) -> list[tuple[int, int]]:
    return _doc_blocks(offsets, max(1, max_rows))


def _scores_block(q: PackedSets, qa: int, qb: int, dv: F32, doff: I64) -> F32:
    """Chamfer ``(qb - qa, n_docs)`` of queries ``qa:qb`` against the packed docs ``dv``."""
    q_rows = q.vectors[q.offsets[qa] : q.offsets[qb]]
    sim = q_rows @ dv.T  # (query vectors, doc vectors)
    best = np.maximum.reduceat(sim, doff[:-1], axis=1)  # (query vectors, docs): max per doc
    q_starts = q.offsets[qa:qb] - q.offsets[qa]
    out: F32 = np.add.reduceat(best, q_starts, axis=0).astype(np.float32, copy=False)
    return out


def chamfer_matrix(queries: Any, docs: Any) -> F32:
    """Chamfer similarity of every query set to every document set.

    Args:
        queries: query sets (see :func:`pack_sets`), ``n_q`` of them.
        docs: document sets, ``n`` of them, same ``dim``.

    Returns:
        ``(n_q, n)`` float32.
    """
    d = pack_sets(docs, name="docs")
    q = pack_sets(queries, d.dim, name="queries")
    return _chamfer_matrix(q, d)


def _chamfer_matrix(q: PackedSets, d: PackedSets) -> F32:
    out = np.empty((len(q), len(d)), np.float32)
    for da, db in _doc_blocks(d.offsets, _DOC_BLOCK_ROWS):
        dv = d.vectors[d.offsets[da] : d.offsets[db]]
        doff = d.offsets[da : db + 1] - d.offsets[da]
        for qa, qb in _query_blocks(q.offsets, _BLOCK // max(1, dv.shape[0])):
            out[qa:qb, da:db] = _scores_block(q, qa, qb, np.asarray(dv, np.float32), doff)
    return out


def chamfer(query: Any, docs: Any) -> F32:
    """Chamfer similarity of one query set ``(m, dim)`` to each of ``n`` document sets.

    Example:
        >>> import numpy as np
        >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
        >>> docs = [np.array([[1.0, 0.0]]), np.array([[0.5, 0.5], [0.0, 2.0]])]
        >>> chamfer(q, docs).tolist()  # doc 0: 1 + 0; doc 1: 0.5 + 2
        [1.0, 2.5]
    """
    d = pack_sets(docs, name="docs")
    q = pack_sets([query], d.dim, name="query")
    out: F32 = _chamfer_matrix(q, d)[0]
    return out


def chamfer_search(queries: Any, docs: Any, k: int) -> tuple[F32, I64]:
    """Exact Chamfer top-``k``: every query against every document (brute force).

    Args:
        queries: ``n_q`` query sets; docs: ``n`` document sets (see :func:`pack_sets`).
        k: results per query (>= 1); when ``k > n`` the missing results are ``-1`` / ``-inf``.

    Returns:
        ``(scores (n_q, k) float32, rows (n_q, k) int64)``: document ROW numbers, best first,
        ties broken by the lower row.
    """
    k = check_int("k", k, min_value=1)
    d = pack_sets(docs, name="docs")
    q = pack_sets(queries, d.dim, name="queries")
    k = min(k, max(len(d), MAX_PADDING))  # never allocate by k alone
    kk = min(k, len(d))
    out_s, out_p = [], []
    # whole score rows (n_q_block, n) at a time, so the top-k is taken once per query
    step = max(1, _BLOCK // max(1, len(d)))
    for a in range(0, len(q), step):
        sub = PackedSets(
            q.vectors[q.offsets[a] : q.offsets[min(a + step, len(q))]],
            q.offsets[a : min(a + step, len(q)) + 1] - q.offsets[a],
        )
        s, p = topk_rows(_chamfer_matrix(sub, d), kk)
        out_s.append(s)
        out_p.append(p)
    if not out_s:
        return pad_results(np.zeros((0, 0), np.float32), np.zeros((0, 0), np.int64), k)
    return pad_results(np.concatenate(out_s), np.concatenate(out_p), k)


# -- packed document vectors on disk -----------------------------------------------------------


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
        index, offsets = _gather_index(self._offsets, kept_rows)
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
        self._offsets = offsets
        self._map(int(offsets[-1]))

    def gather(self, rows: I64) -> PackedSets:
        """The sets ``rows`` read from the file (only their vectors are read)."""
        index, offsets = _gather_index(self._offsets, np.asarray(rows, dtype=np.int64))
        return PackedSets(self._rows(index), offsets)

    def rerank(self, query: F32, rows: I64, k: int) -> tuple[F32, I64]:
        """Exact Chamfer of one query ``(m, dim)`` against the sets ``rows``; best ``k``.

        Returns ``(scores (min(k, c),), rows (min(k, c),))``, ties broken by the lower row.
        """
        rows = np.unique(np.asarray(rows, dtype=np.int64))  # sorted reads
        if rows.size == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        cand = self.gather(rows)
        s = _chamfer_matrix(PackedSets(query, np.array([0, query.shape[0]], np.int64)), cand)
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


# -- the single-vector heuristic ---------------------------------------------------------------
