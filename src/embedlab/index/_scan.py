"""Numba scan kernels: score the codes of selected lists for each query, keep the top k.

Used by :class:`embedlab.index.binary.Binary` (asymmetric scoring, one list holding every
code) and :class:`embedlab.index.ivf.IVF` (the probed inverted lists). Codes live in one
array; list ``l`` is ``codes[starts[l] : starts[l] + sizes[l]]``. For each query ``qi`` and
each probed list ``probes[qi, p]`` (``-1`` = none) a code ``i`` scores::

    lut:  s = bias[qi, p] + vbias[i] + vscale[i] * sum_j tables[qi, j, codes[i, j]]
    dot:  s = bias[qi, p] + vbias[i] + sum_j qv[qi, j] * codes[i, j]

(``vbias`` / ``vscale`` are skipped when empty). The LUT form is the asymmetric distance
computation of product quantisation (Jégou, Douze, Schmid, "Product quantization for nearest
neighbor search", TPAMI 2011): one table of 256 partial scores per code byte and query,
built once per query, then one lookup per byte of each code. It serves PQ (a table entry is
the query sub-vector's dot with a centroid) and sign codes (8 bits = 1 byte; an entry is the
query's 8 coordinates dotted with the byte's +-1 pattern).

Each query keeps a heap of its ``k`` best ``(score, row)`` pairs, so memory is
``O(n_q * k)`` whatever the number of scanned codes; ties go to the lower row, as in
``_base.topk_rows``.

Queries run in parallel: the kernels release the GIL and a thread pool runs one chunk of
queries per thread (``numba.set_num_threads`` sets how many). numba's ``parallel=True`` /
``prange`` was measured first and dropped: its OpenMP workers keep spinning after a kernel,
and on 2 shared cores the BLAS / torch calls between kernels (coarse scores, PQ tables,
top-k of the probes) became 50-200x slower (IVF256,PQ8 search: the PQ tables went from 1 ms
to 192 ms per 500 queries; the same finding as :mod:`embedlab.index._acorn_kernels`).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import numba  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt

from embedlab.index._base import F32, I64

__all__ = [
    "SIGN_PATTERNS",
    "code_width",
    "pq_tables",
    "rescore_rows",
    "scan_dot",
    "scan_lut",
    "sign_tables",
    "top_lists",
]

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
I32 = npt.NDArray[np.int32]
FnT = TypeVar("FnT", bound=Callable[..., Any])
Score = float | np.floating[Any]
_CHUNK = 256  # codes scored before their results go to the heap

#: ``SIGN_PATTERNS[b, t]`` is ``+1`` if bit ``t`` of byte value ``b`` is set, else ``-1``
#: (little bit order: bit ``t`` of code byte ``j`` is dimension ``8 j + t``)
SIGN_PATTERNS: F32 = (((np.arange(256)[:, None] >> np.arange(8)) & 1) * 2.0 - 1.0).astype(
    np.float32
)


def _jit(fn: FnT) -> FnT:
    return cast(FnT, numba.njit(cache=True, fastmath=True, nogil=True)(fn))


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
MIN_QUERIES_PER_THREAD = 4


def n_threads() -> int:
    """Threads for a scan: ``numba.get_num_threads()``, at most the CPUs we may run on."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        cpus = os.cpu_count() or 1
    return max(1, min(int(numba.get_num_threads()), cpus))


def _in_threads(fn: Callable[[int, int], None], n_q: int) -> None:
    """Run ``fn(q0, q1)`` over query chunks, one per thread (the kernels release the GIL)."""
    global _POOL
    chunks = max(1, min(n_threads(), n_q // MIN_QUERIES_PER_THREAD))
    if chunks == 1:
        fn(0, n_q)
        return
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < chunks:
            _POOL = ThreadPoolExecutor(max_workers=chunks, thread_name_prefix="embedlab-scan")
        pool = _POOL
    bounds = np.linspace(0, n_q, chunks + 1).astype(int)
    futures = [pool.submit(fn, int(a), int(b)) for a, b in itertools.pairwise(bounds)]
    for fut in futures:
        fut.result()


def code_width(n_bytes: int) -> int:
    """Stored bytes of an ``n_bytes`` LUT code: rounded up to whole uint32 words."""
    return -(-n_bytes // 4) * 4


def sign_tables(q: F32, n_bytes: int) -> F32:
    """Per-byte tables of the asymmetric sign-code score ``sum_j q_j s_j``.

    Args:
        q: queries ``(n_q, d)`` with ``d <= 8 * n_bytes`` (missing dimensions count as 0).
        n_bytes: code bytes per vector.

    Returns:
        ``(n_q, n_bytes, 256)`` float32: entry ``[i, j, b]`` is ``q[i, 8j:8j+8] . s(b)``
        with ``s(b)`` the +-1 pattern of byte value ``b`` (:data:`SIGN_PATTERNS`).
    """
    n_q, d = q.shape
    qp = np.zeros((n_q, n_bytes * 8), np.float32)
    qp[:, :d] = q
    # (n_q, n_bytes, 8) @ (8, 256) -> (n_q, n_bytes, 256)
    return np.ascontiguousarray(qp.reshape(n_q, n_bytes, 8) @ SIGN_PATTERNS.T)


# --------------------------------------------------------------------------- heaps
@_jit
def _worse(s1: Score, r1: int, s2: Score, r2: int) -> bool:
    """``(s1, r1)`` ranks below ``(s2, r2)``: lower score, or equal score and higher row."""
    return bool(s1 < s2 or (s1 == s2 and r1 > r2))


@_jit
def _sift_down(hs: F32, hr: I64, size: int, i: int) -> None:
    """Restore the heap below ``i``; the root of ``hs[:size]`` is the worst kept result."""
    s, r = hs[i], hr[i]
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and _worse(hs[c + 1], hr[c + 1], hs[c], hr[c]):
            c += 1
        if not _worse(hs[c], hr[c], s, r):
            break
        hs[i], hr[i] = hs[c], hr[c]
        i = c
    hs[i], hr[i] = s, r


@_jit
def _offer(hs: F32, hr: I64, size: int, s: Score, r: int) -> int:
    """Keep ``(s, r)`` if it is among the ``len(hs)`` best seen; returns the heap size."""
    k = hs.shape[0]
    if size < k:
        i = size
        while i > 0:  # sift up
            p = (i - 1) >> 1
            if not _worse(s, r, hs[p], hr[p]):
                break
            hs[i], hr[i] = hs[p], hr[p]
            i = p
        hs[i], hr[i] = s, r
        return size + 1
    if _worse(hs[0], hr[0], s, r):
        hs[0], hr[0] = s, r
        _sift_down(hs, hr, size, 0)
    return size


@_jit
def _finish(hs: F32, hr: I64, size: int) -> None:
    """Heap -> best first (heap sort: the worst goes last); unused slots stay -inf / -1."""
    for end in range(size - 1, 0, -1):
        hs[0], hs[end] = hs[end], hs[0]
        hr[0], hr[end] = hr[end], hr[0]
        _sift_down(hs, hr, end, 0)


# --------------------------------------------------------------------------- scans
@_jit
def _lut_sums(t: F32, words: U32, c0: int, c1: int, buf: F32) -> None:
    """``buf[i - c0] = sum_j t[256 j + byte j of code i]`` for codes ``c0 <= i < c1``."""
    n_words = t.shape[0] // 1024
    m = np.uint32(255)
    for i in range(c0, c1):
        a0 = np.float32(0.0)
        a1 = np.float32(0.0)
        for w in range(n_words):
            v = words[i, w]
            o = w * 1024
            a0 += t[o + np.intp(v & m)]
            a1 += t[o + 256 + np.intp((v >> np.uint32(8)) & m)]
            a0 += t[o + 512 + np.intp((v >> np.uint32(16)) & m)]
            a1 += t[o + 768 + np.intp(v >> np.uint32(24))]
        buf[i - c0] = a0 + a1


@_jit
def _scan_lut(
    tables: F32,
    words: U32,
    starts: I64,
    sizes: I64,
    probes: I64,
    bias: F32,
    vbias: F32,
    vscale: F32,
    rows: I64 | I32,
    out_s: F32,
    out_r: I64,
    q0: int,
    q1: int,
) -> None:
    # tables (n_q, 4 * n_words * 256): entry [qi, 256 * j + b] scores byte value b at code
    # byte j. Codes are read as little-endian uint32 words, four lookups per load: 10.3 ns
    # per 48-byte code against 25-38 ns reading bytes (100k codes, one thread).
    k = out_s.shape[1]
    use_vbias, use_vscale, use_rows = vbias.size > 0, vscale.size > 0, rows.size > 0
    for qi in range(q0, q1):
        hs, hr = out_s[qi], out_r[qi]
        t = tables[qi]
        buf = np.empty(_CHUNK, np.float32)
        size = 0
        thr = -np.inf  # a code must score >= the worst kept result once k are kept
        for p in range(probes.shape[1]):
            lst = probes[qi, p]
            if lst < 0:
                continue
            b = bias[qi, p]
            end = starts[lst] + sizes[lst]
            for c0 in range(starts[lst], end, _CHUNK):
                c1 = min(c0 + _CHUNK, end)
                # pass 1: the table sums alone (a tight loop), pass 2: biases and the heap
                _lut_sums(t, words, c0, c1, buf)
                for i in range(c0, c1):
                    s = buf[i - c0]
                    if use_vscale:
                        s *= vscale[i]
                    s += b
                    if use_vbias:
                        s += vbias[i]
                    if s >= thr:
                        r = rows[i] if use_rows else i
                        if size < k or _worse(hs[0], hr[0], s, r):
                            size = _offer(hs, hr, size, s, r)
                            if size == k:
                                thr = hs[0]
        _finish(hs, hr, size)


@_jit
def _scan_dot(
    qv: F32,
    codes: Any,
    starts: I64,
    sizes: I64,
    probes: I64,
    bias: F32,
    vbias: F32,
    rows: I64 | I32,
    out_s: F32,
    out_r: I64,
    q0: int,
    q1: int,
) -> None:
    d = qv.shape[1]
    k = out_s.shape[1]
    use_vbias, use_rows = vbias.size > 0, rows.size > 0
    for qi in range(q0, q1):
        hs, hr = out_s[qi], out_r[qi]
        q = qv[qi]
        size = 0
        thr = -np.inf
        for p in range(probes.shape[1]):
            lst = probes[qi, p]
            if lst < 0:
                continue
            b = bias[qi, p]
            for i in range(starts[lst], starts[lst] + sizes[lst]):
                c = codes[i]
                s = np.float32(0.0)
                for j in range(d):
                    s += q[j] * np.float32(c[j])
                s += b
                if use_vbias:
                    s += vbias[i]
                if s >= thr:
                    r = rows[i] if use_rows else i
                    if size < k or _worse(hs[0], hr[0], s, r):
                        size = _offer(hs, hr, size, s, r)
                        if size == k:
                            thr = hs[0]
        _finish(hs, hr, size)


_EMPTY_F = np.zeros(0, np.float32)
_EMPTY_I = np.zeros(0, np.int64)


def _outputs(n_q: int, k: int) -> tuple[F32, I64]:
    return np.full((n_q, k), -np.inf, np.float32), np.full((n_q, k), -1, np.int64)


def scan_lut(
    tables: F32,
    codes: U8,
    starts: I64,
    sizes: I64,
    probes: I64,
    bias: F32,
    k: int,
    *,
    vbias: F32 | None = None,
    vscale: F32 | None = None,
    rows: I64 | I32 | None = None,
) -> tuple[F32, I64]:
    """Top ``k`` of the LUT scores (module docstring) over the probed lists, best first.

    Args:
        tables: ``(n_q, n_sub, 256)`` float32 with ``n_sub <= width``; code bytes past
            ``n_sub`` must be padding (they are scored 0 whatever their value).
        codes: ``(n_slots, width)`` uint8, C-contiguous, ``width`` a multiple of 4 (the
            kernel reads uint32 words; see :func:`code_width`).
        starts, sizes: ``(nlist,)`` int64 slot range of each list.
        probes: ``(n_q, nprobe)`` int64 lists to scan per query, ``-1`` = none.
        bias: ``(n_q, nprobe)`` float32 added to every score from that probe.
        k: results per query.
        vbias, vscale: ``(n_slots,)`` float32 per-code bias / factor (default none).
        rows: ``(n_slots,)`` int32 / int64 row reported for each slot (default: the slot).

    Returns:
        ``(scores (n_q, k) float32, rows (n_q, k) int64)``; ``-inf`` / ``-1`` past the
        codes found.
    """
    n_q, n_sub = tables.shape[:2]
    width = codes.shape[1]
    if width % 4 or n_sub > width:  # pragma: no cover - internal contract
        raise ValueError(f"codes width {width} must be a multiple of 4 and >= {n_sub}")
    if n_sub == width:
        flat = np.ascontiguousarray(tables, dtype=np.float32).reshape(n_q, width * 256)
    else:  # padding bytes score 0
        flat = np.zeros((n_q, width * 256), np.float32)
        flat[:, : n_sub * 256] = tables.reshape(n_q, n_sub * 256)
    words = np.ascontiguousarray(codes).view(np.uint32)
    bias = np.ascontiguousarray(bias, dtype=np.float32)
    vb = _EMPTY_F if vbias is None else vbias
    vs = _EMPTY_F if vscale is None else vscale
    rw = _EMPTY_I if rows is None else rows
    out_s, out_r = _outputs(n_q, k)

    def run(q0: int, q1: int) -> None:
        _scan_lut(flat, words, starts, sizes, probes, bias, vb, vs, rw, out_s, out_r, q0, q1)

    _in_threads(run, n_q)
    return out_s, out_r


def scan_dot(
    qv: F32,
    codes: F32 | U8,
    starts: I64,
    sizes: I64,
    probes: I64,
    bias: F32,
    k: int,
    *,
    vbias: F32 | None = None,
    rows: I64 | I32 | None = None,
) -> tuple[F32, I64]:
    """Top ``k`` of the dot scores (module docstring) over the probed lists, best first.

    Args:
        qv: ``(n_q, d)`` float32 query side (the query, or the query times Int8's scales).
        codes: ``(n_slots, d)`` float32 vectors or uint8 codes.
        starts, sizes, probes, bias, k, vbias, rows: as in :func:`scan_lut`.

    Returns:
        ``(scores (n_q, k) float32, rows (n_q, k) int64)``.
    """
    qv = np.ascontiguousarray(qv, dtype=np.float32)
    bias = np.ascontiguousarray(bias, dtype=np.float32)
    vb = _EMPTY_F if vbias is None else vbias
    rw = _EMPTY_I if rows is None else rows
    out_s, out_r = _outputs(qv.shape[0], k)

    def run(q0: int, q1: int) -> None:
        _scan_dot(qv, codes, starts, sizes, probes, bias, vb, rw, out_s, out_r, q0, q1)

    _in_threads(run, qv.shape[0])
    return out_s, out_r


# ------------------------------------------------------------------ per-query helpers
# Small per-query work between the scans, in numba too: batched BLAS (np.matmul over the
# sub-spaces) and torch.topk ran 30-100x slower with 2 threads than with 1 on 2 loaded cores.
@_jit
def _pq_tables(q: F32, cb: F32, out: F32, q0: int, q1: int) -> None:
    m, ksub, dsub = cb.shape
    for qi in range(q0, q1):
        for j in range(m):
            for c in range(ksub):
                s = np.float32(0.0)
                for t in range(dsub):
                    s += q[qi, j * dsub + t] * cb[j, c, t]
                out[qi, j, c] = s


def pq_tables(q: F32, codebooks: F32) -> F32:
    """ADC tables ``(n_q, m, ksub)``: entry ``[i, j, c]`` is ``q_i`` sub-vector ``j`` dotted
    with centroid ``c`` of sub-space ``j``; ``codebooks (m, ksub, dsub)``, ``q (n_q, m * dsub)``."""
    q = np.ascontiguousarray(q, dtype=np.float32)
    cb = np.ascontiguousarray(codebooks, dtype=np.float32)
    out = np.empty((q.shape[0], cb.shape[0], cb.shape[1]), np.float32)
    _in_threads(lambda q0, q1: _pq_tables(q, cb, out, q0, q1), q.shape[0])
    return out


@_jit
def _top_lists(scores: F32, out_s: F32, out_r: I64, q0: int, q1: int) -> None:
    k = out_s.shape[1]
    for qi in range(q0, q1):
        hs, hr = out_s[qi], out_r[qi]
        size = 0
        thr = -np.inf
        for lst in range(scores.shape[1]):
            s = scores[qi, lst]
            if s >= thr:
                size = _offer(hs, hr, size, s, lst)
                if size == k:
                    thr = hs[0]
        _finish(hs, hr, size)


def top_lists(scores: F32, n: int) -> I64:
    """Columns of the ``n`` best scores per row of ``scores (n_q, nlist)``, best first
    (ties: the lower column, as ``_base.topk_rows``): ``(n_q, n)`` int64."""
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    out_s, out_r = _outputs(scores.shape[0], n)
    _in_threads(lambda q0, q1: _top_lists(scores, out_s, out_r, q0, q1), scores.shape[0])
    return out_r


@_jit
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
                size = _offer(hs, hr, size, s, p)
                if size == k:
                    thr = hs[0]
        _finish(hs, hr, size)


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
    out_s, out_r = _outputs(q.shape[0], k)
    _in_threads(lambda q0, q1: _rescore(q, x, positions, l2, out_s, out_r, q0, q1), q.shape[0])
    return out_s, out_r
