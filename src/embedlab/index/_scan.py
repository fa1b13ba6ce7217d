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

Each query keeps a heap of its ``k`` best ``(score, row)`` pairs (memory ``O(n_q * k)``),
and queries run in parallel in a thread pool; both are in :mod:`embedlab.index._topk`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from embedlab.index._base import F32, I64
from embedlab.index._topk import finish, jit, offer, outputs, run_in_threads, worse

__all__ = ["SIGN_PATTERNS", "code_width", "pq_tables", "scan_dot", "scan_lut", "sign_tables"]

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
I32 = npt.NDArray[np.int32]
_CHUNK = 256  # codes scored before their results go to the heap
_EMPTY_F = np.zeros(0, np.float32)
_EMPTY_I = np.zeros(0, np.int64)

#: ``SIGN_PATTERNS[b, t]`` is ``+1`` if bit ``t`` of byte value ``b`` is set, else ``-1``
#: (little bit order: bit ``t`` of code byte ``j`` is dimension ``8 j + t``)
SIGN_PATTERNS: F32 = (((np.arange(256)[:, None] >> np.arange(8)) & 1) * 2.0 - 1.0).astype(
    np.float32
)


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


# --------------------------------------------------------------------------- scans
@jit
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


@jit
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
                        if size < k or worse(hs[0], hr[0], s, r):
                            size = offer(hs, hr, size, s, r)
                            if size == k:
                                thr = hs[0]
        finish(hs, hr, size)


@jit
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
                    if size < k or worse(hs[0], hr[0], s, r):
                        size = offer(hs, hr, size, s, r)
                        if size == k:
                            thr = hs[0]
        finish(hs, hr, size)


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
    out_s, out_r = outputs(n_q, k)

    def run(q0: int, q1: int) -> None:
        _scan_lut(flat, words, starts, sizes, probes, bias, vb, vs, rw, out_s, out_r, q0, q1)

    run_in_threads(run, n_q)
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
    out_s, out_r = outputs(qv.shape[0], k)

    def run(q0: int, q1: int) -> None:
        _scan_dot(qv, codes, starts, sizes, probes, bias, vb, rw, out_s, out_r, q0, q1)

    run_in_threads(run, qv.shape[0])
    return out_s, out_r


# ------------------------------------------------------------------------ PQ tables
# In numba rather than batched BLAS (np.matmul over the sub-spaces), which ran 30-100x slower
# with 2 threads than with 1 on 2 loaded cores.
@jit
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
    run_in_threads(lambda q0, q1: _pq_tables(q, cb, out, q0, q1), q.shape[0])
    return out
