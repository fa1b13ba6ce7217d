"""Numba kernels of the ACORN-style graph (:mod:`embedlab.index.acorn`): heaps, the
filtered beam search, edge insertion, list ordering and deletion repair, plus the thread
pool that runs them in parallel (the kernels release the GIL)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import numba  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

from embedlab.index._base import F32

I32 = npt.NDArray[np.int32]
B8 = npt.NDArray[np.bool_]
FnT = TypeVar("FnT", bound=Callable[..., Any])


def _jit(fn: FnT) -> FnT:
    return cast(FnT, numba.njit(cache=True, fastmath=True, nogil=True)(fn))


_POOL: ThreadPoolExecutor | None = None
MIN_QUERIES_PER_THREAD = 4
_POOL_LOCK = threading.Lock()


def n_threads() -> int:
    """Threads used for graph work: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return max(1, os.cpu_count() or 1)


def _in_threads(fn: Callable[[int, int], None], n_items: int, min_per_chunk: int) -> int:
    """Run ``fn(t, n_chunks)`` for every chunk ``t``, in a thread pool when worth it.

    The kernels release the GIL (``nogil``), so Python threads run them in parallel. numba's
    own ``parallel=True`` was avoided on purpose: its OpenMP workers kept spinning after each
    kernel and slowed the BLAS calls between kernels by 3-4x on 2 shared cores.
    """
    global _POOL
    chunks = max(1, min(n_threads(), n_items // max(1, min_per_chunk)))
    if chunks == 1:
        fn(0, 1)
        return 1
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=n_threads(), thread_name_prefix="acorn")
        pool = _POOL
    for fut in [pool.submit(fn, t, chunks) for t in range(chunks)]:
        fut.result()
    return chunks


# --------------------------------------------------------------------------- kernels
@_jit
def _score(x: F32, x_sq: F32, l2: bool, q: F32, q_sq: float, v: int) -> float:
    s = np.float32(0.0)
    for j in range(x.shape[1]):
        s += q[j] * x[v, j]
    if l2:
        return float(-(q_sq + x_sq[v] - 2.0 * s))
    return float(s)


@_jit
def _push(keys: F32, vals: I32, size: int, key: float, val: int) -> int:
    """Push onto the min-heap ``keys[:size]``; returns the new size."""
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= key:
            break
        keys[i] = keys[parent]
        vals[i] = vals[parent]
        i = parent
    keys[i] = key
    vals[i] = val
    return size + 1


@_jit
def _sift_down(keys: F32, vals: I32, size: int, key: float, val: int) -> None:
    """Place ``(key, val)`` at the root of the min-heap ``keys[:size]`` and restore order."""
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and keys[child + 1] < keys[child]:
            child += 1
        if keys[child] >= key:
            break
        keys[i] = keys[child]
        vals[i] = vals[child]
        i = child
    keys[i] = key
    vals[i] = val


@_jit
def _pop(keys: F32, vals: I32, size: int) -> int:
    """Remove the root of the min-heap ``keys[:size]``; returns the new size."""
    size -= 1
    if size > 0:
        _sift_down(keys, vals, size, keys[size], vals[size])
    return size


@_jit
def _visit(
    x: F32,
    x_sq: F32,
    l2: bool,
    q: F32,
    q_sq: float,
    v: int,
    ef: int,
    cand_k: F32,
    cand_v: I32,
    nc: int,
    res_k: F32,
    res_v: I32,
    nr: int,
) -> tuple[int, int]:
    """Score node ``v``; queue it as a candidate and keep it among the ``ef`` best results
    when it beats the worst one. Returns the new candidate and result heap sizes."""
    s = _score(x, x_sq, l2, q, q_sq, v)
    if nr < ef or s > res_k[0]:
        nc = _push(cand_k, cand_v, nc, -s, v)
        if nr < ef:
            nr = _push(res_k, res_v, nr, s, v)
        else:
            _sift_down(res_k, res_v, nr, s, v)
    return nc, nr


@_jit
def _search_one(
    x: F32,
    x_sq: F32,
    l2: bool,
    nbrs: I32,
    q: F32,
    q_sq: float,
    entries: I32,
    ef: int,
    m_search: int,
    mask: B8,
    use_mask: bool,
    two_hop: bool,
    visited: I32,
    epoch: int,
    cand_k: F32,
    cand_v: I32,
    res_k: F32,
    res_v: I32,
    local: I32,
) -> int:
    """Best-first search of one query; the results are left in the heap ``res_k/res_v``.

    ``cand`` is a min-heap of negated scores (best candidate first), ``res`` a min-heap of
    scores (worst kept result first) holding at most ``ef`` entries. Returns its size.
    """
    nc = 0
    nr = 0
    deg = nbrs.shape[1]
    for e in entries:
        if e < 0 or visited[e] == epoch:
            continue
        visited[e] = epoch
        if use_mask and not mask[e]:
            continue
        s = _score(x, x_sq, l2, q, q_sq, e)
        nc = _push(cand_k, cand_v, nc, -s, e)
        if nr < ef:
            nr = _push(res_k, res_v, nr, s, e)
        elif s > res_k[0]:
            _sift_down(res_k, res_v, nr, s, e)
    while nc > 0:
        cs = -cand_k[0]
        c = cand_v[0]
        nc = _pop(cand_k, cand_v, nc)
        if nr >= ef and cs < res_k[0]:
            break
        # Filtered neighbourhood of c: its distinct passing neighbours in list order, at most
        # m_search; ``local`` holds them (visited or not) so two-hop finds count once.
        cnt = 0
        for i in range(deg):
            v = nbrs[c, i]
            if v < 0:
                break
            if use_mask and not mask[v]:
                continue
            local[cnt] = v
            cnt += 1
            if visited[v] != epoch:
                visited[v] = epoch
                nc, nr = _visit(x, x_sq, l2, q, q_sq, v, ef, cand_k, cand_v, nc, res_k, res_v, nr)
            if cnt >= m_search:
                break
        if not (use_mask and two_hop) or cnt >= m_search:
            continue
        # Too sparse: look through the failing neighbours at their first m_search neighbours.
        for i in range(deg):
            v = nbrs[c, i]
            if v < 0 or cnt >= m_search:
                break
            if mask[v]:
                continue
            for j in range(min(deg, m_search)):
                w = nbrs[v, j]
                if w < 0:
                    break
                if w == c or not mask[w]:
                    continue
                dup = False
                for h in range(cnt):
                    if local[h] == w:
                        dup = True
                        break
                if dup:
                    continue
                local[cnt] = w
                cnt += 1
                if visited[w] != epoch:
                    visited[w] = epoch
                    nc, nr = _visit(
                        x, x_sq, l2, q, q_sq, w, ef, cand_k, cand_v, nc, res_k, res_v, nr
                    )
                if cnt >= m_search:
                    break
    return nr


@_jit
def _sorted_results(res_k: F32, res_v: I32, nr: int) -> npt.NDArray[np.int64]:
    """Order of the ``nr`` results best first, ties by lower node number."""
    by_node = np.argsort(res_v[:nr], kind="mergesort")
    return by_node[np.argsort(-res_k[:nr][by_node], kind="mergesort")]


@_jit
def _search_chunk(
    x: F32,
    x_sq: F32,
    l2: bool,
    nbrs: I32,
    queries: F32,
    q_sq: F32,
    entries: I32,
    free_entries: I32,
    entry_ef: int,
    ef: int,
    k: int,
    m_search: int,
    mask: B8,
    use_mask: bool,
    two_hop: bool,
    visited: I32,
    epoch0: int,
    t: int,
    n_chunks: int,
    out_s: F32,
    out_i: I32,
) -> None:
    """Search chunk ``t`` of ``n_chunks`` of the queries into ``out_s``/``out_i`` ``(n_q, k)``.

    With a mask and ``entry_ef > 0``, each query first runs an unfiltered search of width
    ``entry_ef`` from ``free_entries`` (this plays the part of HNSW's upper layers: it lands
    in the query's neighbourhood); the passing nodes among its results and their neighbours
    join ``entries`` as the starting points of the filtered search.
    ``visited (n,)`` holds this chunk's epoch marks: query ``i`` uses ``epoch0 + 2 i + 1``
    and ``epoch0 + 2 i + 2``.
    """
    n_q = queries.shape[0]
    n = x.shape[0]
    per = (n_q + n_chunks - 1) // n_chunks
    n_start = entries.shape[1] + m_search
    width = max(ef, entry_ef)
    cand_k = np.empty(n + n_start + 1, dtype=np.float32)
    cand_v = np.empty(n + n_start + 1, dtype=np.int32)
    res_k = np.empty(width + 1, dtype=np.float32)
    res_v = np.empty(width + 1, dtype=np.int32)
    local = np.empty(max(m_search, 1), dtype=np.int32)
    start = np.empty(n_start, dtype=np.int32)
    for qi in range(t * per, min(n_q, (t + 1) * per)):
        q = queries[qi]
        n_ent = 0
        for e in entries[qi]:
            start[n_ent] = e
            n_ent += 1
        if use_mask and entry_ef > 0:
            nr = _search_one(
                x, x_sq, l2, nbrs, q, q_sq[qi], free_entries[qi], entry_ef, m_search,
                mask, False, False, visited, epoch0 + 2 * qi + 1,
                cand_k, cand_v, res_k, res_v, local,
            )  # fmt: skip
            order = _sorted_results(res_k, res_v, nr)
            want = n_start
            for j in range(nr):
                r = res_v[order[j]]
                if mask[r] and n_ent < want:
                    start[n_ent] = r
                    n_ent += 1
            for j in range(nr):
                if n_ent >= want:
                    break
                r = res_v[order[j]]
                for i in range(nbrs.shape[1]):
                    v = nbrs[r, i]
                    if v < 0 or n_ent >= want:
                        break
                    if mask[v]:
                        start[n_ent] = v
                        n_ent += 1
        nr = _search_one(
            x, x_sq, l2, nbrs, q, q_sq[qi], start[:n_ent], ef, m_search,
            mask, use_mask, two_hop, visited, epoch0 + 2 * qi + 2,
            cand_k, cand_v, res_k, res_v, local,
        )  # fmt: skip
        order = _sorted_results(res_k, res_v, nr)
        for j in range(min(k, nr)):
            out_s[qi, j] = res_k[order[j]]
            out_i[qi, j] = res_v[order[j]]
