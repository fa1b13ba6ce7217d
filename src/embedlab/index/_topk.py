"""Numba top-k plumbing shared by the scan kernels (:mod:`embedlab.index._scan`): a
``(score, row)`` heap per query, a thread pool over GIL-free kernels, and two small top-k
kernels (the best lists of a coarse quantiser, exact re-scoring of candidate rows).

Queries run in parallel: the kernels release the GIL and a thread pool runs one chunk of
queries per thread (``numba.set_num_threads`` sets how many). numba's ``parallel=True`` /
``prange`` was measured first and dropped: its OpenMP workers keep spinning after a kernel,
and on 2 shared cores the BLAS / torch calls between kernels (coarse scores, PQ tables,
top-k of the probes) became 50-200x slower (IVF256,PQ8 search: the PQ tables went from 1 ms
to 192 ms per 500 queries; the same finding as :mod:`embedlab.index._acorn_kernels`).

Each query keeps a heap of its ``k`` best ``(score, row)`` pairs (root = the worst kept), so
memory is ``O(n_q * k)`` whatever the number of scored candidates; ties go to the lower row,
as in ``_base.topk_rows``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import numba  # type: ignore[import-untyped]
import numpy as np

from embedlab.index._base import F32, I64

__all__ = [
    "finish",
    "jit",
    "n_threads",
    "offer",
    "one_blas_thread",
    "outputs",
    "rescore_rows",
    "run_in_threads",
    "top_lists",
    "worse",
]

FnT = TypeVar("FnT", bound=Callable[..., Any])
Score = float | np.floating[Any]


def jit(fn: FnT) -> FnT:
    """``numba.njit``, cached, fastmath, releasing the GIL (for :func:`run_in_threads`)."""
    return cast(FnT, numba.njit(cache=True, fastmath=True, nogil=True)(fn))


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
MIN_QUERIES_PER_THREAD = 4
_LOCAL = threading.local()


def n_threads() -> int:
    """Threads for a scan: ``numba.get_num_threads()``, at most the CPUs we may run on."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        cpus = os.cpu_count() or 1
    return max(1, min(int(numba.get_num_threads()), cpus))


def _pool(workers: int) -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < workers:
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embedlab-scan")
        return _POOL


def run_in_threads(fn: Callable[[int, int], None], n_q: int) -> None:
    """Run ``fn(q0, q1)`` over query chunks, one per thread (the kernels release the GIL).

    Inside :func:`run_blocks` (which already spreads whole query blocks over the threads)
    it runs ``fn(0, n_q)`` in the calling thread.
    """
    inline = getattr(_LOCAL, "inline", False)
    chunks = 1 if inline else max(1, min(n_threads(), n_q // MIN_QUERIES_PER_THREAD))
    if chunks == 1:
        fn(0, n_q)
        return
    pool = _pool(chunks)
    bounds = np.linspace(0, n_q, chunks + 1).astype(int)
    futures = [pool.submit(fn, int(a), int(b)) for a, b in itertools.pairwise(bounds)]
    for fut in futures:
        fut.result()


# --------------------------------------------------------------------------- heaps
@jit
def worse(s1: Score, r1: int, s2: Score, r2: int) -> bool:
    """``(s1, r1)`` ranks below ``(s2, r2)``: lower score, or equal score and higher row."""
    return bool(s1 < s2 or (s1 == s2 and r1 > r2))


@jit
def _sift_down(hs: F32, hr: I64, size: int, i: int) -> None:
    """Restore the heap below ``i``; the root of ``hs[:size]`` is the worst kept result."""
    s, r = hs[i], hr[i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and worse(hs[c + 1], hr[c + 1], hs[c], hr[c]):
            c += 1
        if not worse(hs[c], hr[c], s, r):
            break
        hs[i], hr[i] = hs[c], hr[c]
        i = c
    hs[i], hr[i] = s, r


@jit
def offer(hs: F32, hr: I64, size: int, s: Score, r: int) -> int:
    """Keep ``(s, r)`` if it is among the ``len(hs)`` best seen; returns the heap size."""
    k = hs.shape[0]
    if size < k:
        i = size
        while i > 0:  # sift up
            p = (i - 1) >> 1
            if not worse(s, r, hs[p], hr[p]):
                break
            hs[i], hr[i] = hs[p], hr[p]
            i = p
        hs[i], hr[i] = s, r
        return size + 1
    if worse(hs[0], hr[0], s, r):
        hs[0], hr[0] = s, r
        _sift_down(hs, hr, size, 0)
    return size


@jit
def finish(hs: F32, hr: I64, size: int) -> None:
    """Heap -> best first (heap sort: the worst goes last); unused slots stay -inf / -1."""
    for end in range(size - 1, 0, -1):
        hs[0], hs[end] = hs[end], hs[0]
        hr[0], hr[end] = hr[end], hr[0]
        _sift_down(hs, hr, end, 0)


def outputs(n_q: int, k: int) -> tuple[F32, I64]:
    """Empty results ``(scores (n_q, k) = -inf, rows (n_q, k) = -1)`` for the heaps to fill."""
    return np.full((n_q, k), -np.inf, np.float32), np.full((n_q, k), -1, np.int64)


@jit
def _top_lists(scores: F32, out_s: F32, out_r: I64, q0: int, q1: int) -> None:
    k = out_s.shape[1]
    for qi in range(q0, q1):
        hs, hr = out_s[qi], out_r[qi]
        size = 0
        thr = -np.inf
        for lst in range(scores.shape[1]):
            s = scores[qi, lst]
            if s >= thr:
                size = offer(hs, hr, size, s, lst)
                if size == k:
                    thr = hs[0]
        finish(hs, hr, size)


def top_lists(scores: F32, n: int) -> I64:
    """Columns of the ``n`` best scores per row of ``scores (n_q, nlist)``, best first
    (ties: the lower column, as ``_base.topk_rows``): ``(n_q, n)`` int64."""
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    out_s, out_r = outputs(scores.shape[0], n)
    run_in_threads(lambda q0, q1: _top_lists(scores, out_s, out_r, q0, q1), scores.shape[0])
    return out_r


@jit
def _rescore(q: F32, x: F32, pos: I64, l2: bool, out_s: F32, out_r: I64, q0: int, q1: int) -> None:
    k = out_s.shape[1]
    d = q.shape[1]
    for qi in range(q0, q1):
        hs, hr = out_s[qi], out_r[qi]
        size = 0
        thr = -np.inf
        for c in range(pos.shape[1]):
            p = pos[qi, c]
            if p < 0:
                continue
            s = np.float32(0.0)
            if l2:
                for j in range(d):
                    diff = x[p, j] - q[qi, j]
                    s -= diff * diff
            else:
                for j in range(d):
                    s += q[qi, j] * x[p, j]
            if s >= thr:
                size = offer(hs, hr, size, s, p)
                if size == k:
                    thr = hs[0]
        finish(hs, hr, size)


def rescore_rows(q: F32, x: F32, positions: I64, l2: bool, k: int) -> tuple[F32, I64]:
    """Exact scores of each query against its candidate rows of ``x``, best ``k`` first.

    The same scores as :func:`embedlab.index.rerank.rescore_candidates` (dot product, or
    ``-|x - q|^2`` when ``l2``), read straight from ``x`` (e.g. a memory-mapped file)
    without gathering a ``(n_q, c, dim)`` copy of the candidates.

    Args:
        q: queries ``(n_q, dim)`` float32.
        x: vectors ``(n, dim)`` float32.
        positions: candidate rows ``(n_q, c)`` int64, unique per query; ``-1`` = none.
        l2: negative squared distances instead of dot products.
        k: results per query.

    Returns:
        ``(scores (n_q, k), rows (n_q, k))``; ``-inf`` / ``-1`` past the candidates.
    """
    q = np.ascontiguousarray(q, dtype=np.float32)
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    out_s, out_r = outputs(q.shape[0], k)
    run_in_threads(lambda q0, q1: _rescore(q, x, positions, l2, out_s, out_r, q0, q1), q.shape[0])
    return out_s, out_r


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold every loaded BLAS (numpy's OpenBLAS, torch's, MKL) at one thread meanwhile.

    For code that runs its own threads over blocks (:func:`run_blocks`): two blocks each
    asking a 2-thread OpenBLAS for a product oversubscribe the cores or queue on its lock.
    The limit is process-wide (threadpoolctl), so BLAS calls that other threads make
    meanwhile also run on one thread. It looks up the loaded libraries each time (about
    0.3 ms), so libraries loaded since the last call are held too. Without threadpoolctl
    (it comes with scikit-learn) the threads are left alone.
    """
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run_blocks(fn: Callable[[int], None], n_blocks: int) -> None:
    """Run ``fn(i)`` for every block ``i`` of queries, whole blocks spread over the threads.

    Each block's set-up (coarse scores, tables) then runs in parallel too, not only its
    kernel, and the pool wakes once per search instead of once per block. Kernels called
    inside run in their block's thread (:func:`run_in_threads`). With one block or one
    thread the blocks run in order here and their kernels use the threads.
    """
    workers = min(n_threads(), n_blocks)
    if workers <= 1:
        for i in range(n_blocks):
            fn(i)
        return
    with one_blas_thread():  # each block's products run in its own thread
        _run_workers(fn, n_blocks, workers)


def _run_workers(fn: Callable[[int], None], n_blocks: int, workers: int) -> None:
    def worker(w: int) -> None:
        _LOCAL.inline = True
        try:
            for i in range(w, n_blocks, workers):
                fn(i)
        finally:
            _LOCAL.inline = False

    pool = _pool(workers)
    futures = [pool.submit(worker, w) for w in range(workers)]
    for fut in futures:
        fut.result()
