"""The Python side of a search of the ACORN-style graph (:mod:`embedlab.index.acorn`):
entry points from the seed sample, and the threaded run of the numba search kernel
(:func:`._acorn_kernels._search_chunk`) with a reusable pool of visited marks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from embedlab.index._acorn_kernels import (
    B8,
    I32,
    MIN_QUERIES_PER_THREAD,
    _in_threads,
    _search_chunk,
    n_threads,
)
from embedlab.index._base import F32, Metric
from embedlab.index.flat import pairwise_scores

__all__ = ["VisitedMarks", "best_columns", "check_mask", "entry_points", "run_search", "sq_norms"]


def sq_norms(x: F32, l2: bool) -> F32:
    """Squared row norms ``(n,)`` of ``x`` for ``l2``; zeros otherwise (the kernels skip them)."""
    if l2:
        return cast(F32, np.einsum("ij,ij->i", x, x).astype(np.float32))
    return np.zeros(x.shape[0], np.float32)


def best_columns(s: F32, k: int) -> tuple[F32, npt.NDArray[np.int64]]:
    """The best ``k`` columns of each row of ``s (n_q, c)``, best first, ties by lower column.

    For the few entry points of a search: ``np.argpartition`` on these small matrices costs
    a fraction of ``topk_rows``' torch call, whose thread wake-ups dominated small calls.
    """
    k = min(k, s.shape[1])
    part = np.argpartition(-s, k - 1, axis=1)[:, :k] if 0 < k < s.shape[1] else None
    cols = np.broadcast_to(np.arange(s.shape[1]), s.shape) if part is None else part
    vals = np.take_along_axis(s, cols, axis=1)
    if part is not None:  # rows with ties at the k-th score: the lowest columns, as sorted
        thr = vals.min(axis=1)
        for r in np.flatnonzero((s >= thr[:, None]).sum(axis=1) > k):
            cols[r] = np.lexsort((np.arange(s.shape[1]), -s[r]))[:k]
            vals[r] = s[r, cols[r]]
    order = np.lexsort((cols, -vals), axis=-1)[:, :k]
    return np.take_along_axis(vals, order, axis=1), np.take_along_axis(cols, order, axis=1)


def check_mask(mask: Any, n: int) -> B8:
    """``mask`` as a contiguous ``(n,)`` bool array; the error names the shape it needs."""
    arr = np.asarray(mask)
    if arr.dtype != np.bool_ or arr.shape != (n,):
        raise ValueError(
            f"mask must be a boolean array of shape ({n},), got {arr.dtype} {arr.shape}"
        )
    return np.ascontiguousarray(arr)


def entry_points(
    x: F32,
    q: F32,
    seeds: I32,
    mask: B8 | None,
    n_nodes: int,
    *,
    metric: Metric,
    n_entry: int,
    seed: int,
) -> tuple[I32, I32]:
    """Entry nodes ``(n_q, n_entry)`` twice: the best passing ``seeds`` (random passing nodes
    when no seed passes), and the best seeds regardless of the mask."""
    seeds = seeds[seeds < n_nodes]
    n_q = q.shape[0]
    ne = n_entry
    s = pairwise_scores(q, x[seeds], metric)
    free = np.full((n_q, ne), -1, np.int32)
    if mask is not None:
        _, cols = best_columns(s, ne)
        free[:, : cols.shape[1]] = seeds[cols]
        s[:, ~mask[seeds]] = -np.inf
    ts, cols = best_columns(s, ne)
    ent = np.full((n_q, ne), -1, np.int32)
    ent[:, : cols.shape[1]] = np.where(np.isfinite(ts), seeds[cols], -1)
    empty = ent[:, 0] < 0
    if empty.any() and mask is not None:
        passing = np.flatnonzero(mask[:n_nodes])
        if passing.size:
            rng = np.random.default_rng([seed, n_q, passing.size])
            pick = rng.choice(passing, min(ne, passing.size), replace=False)
            ent[np.ix_(empty, np.arange(pick.size))] = pick
    return ent, free


class VisitedMarks:
    """A reusable pool of visited marks ``(threads, n)`` int32 for the search kernel: a
    search marks a node with an epoch number, so the pool is cleared only when the epochs
    run out. A concurrent caller (the pool is busy) gets its own fresh one."""

    def __init__(self) -> None:
        self._pool: I32 = np.zeros((0, 0), np.int32)
        self._epoch = 0
        self._lock = threading.Lock()

    def use(self, run: Callable[[I32, int], None], chunks: int, n: int, n_q: int) -> None:
        """Call ``run(visited, epoch0)`` with marks for ``chunks`` threads over ``n`` nodes;
        a search of ``n_q`` queries uses ``2 n_q + 2`` epochs from ``epoch0`` on."""
        if self._lock.acquire(blocking=False):
            try:
                if self._pool.shape[0] < chunks or self._pool.shape[1] < n:
                    self._pool = np.zeros((max(chunks, self._pool.shape[0]), n), np.int32)
                    self._epoch = 0
                if self._epoch + 2 * n_q + 2 >= 2**31 - 1:
                    self._pool[:] = 0
                    self._epoch = 0
                run(self._pool, self._epoch)
                self._epoch += 2 * n_q + 2
            finally:
                self._lock.release()
        else:
            run(np.zeros((chunks, n), np.int32), 0)


def run_search(
    marks: VisitedMarks,
    x: F32,
    x_sq: F32,
    l2: bool,
    nbrs: I32,
    q: F32,
    entries: tuple[I32, I32],
    ef: int,
    k: int,
    m_search: int,
    mask: B8 | None,
    two_hop: bool,
    entry_ef: int,
) -> tuple[F32, I32]:
    """Run the search kernel over the queries ``q`` in threads: ``(scores, nodes)``, each
    ``(n_q, k)``, best first (``-inf`` / ``-1`` padded)."""
    n_q = q.shape[0]
    n = x.shape[0]
    q_sq = sq_norms(q, l2)
    chunks = max(1, min(n_threads(), n_q // MIN_QUERIES_PER_THREAD))
    mask_arr = np.zeros(1, np.bool_) if mask is None else mask
    args = (x, x_sq, l2, nbrs, q, q_sq, *entries, entry_ef, ef, k)
    tail = (m_search, mask_arr, mask is not None, two_hop)
    out_s = np.full((n_q, k), -np.inf, np.float32)
    out_i = np.full((n_q, k), -1, np.int32)

    def run(visited: I32, epoch0: int) -> None:
        def chunk(t: int, n_chunks: int) -> None:
            _search_chunk(*args, *tail, visited[t], epoch0, t, n_chunks, out_s, out_i)

        _in_threads(chunk, n_q, MIN_QUERIES_PER_THREAD)

    # A reusable pool of visited marks; a concurrent caller gets its own fresh one.
    marks.use(run, chunks, n, n_q)
    return out_s, out_i
