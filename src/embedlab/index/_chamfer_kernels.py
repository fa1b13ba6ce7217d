"""Chamfer scoring kernels on validated :class:`~embedlab.index._token_sets.PackedSets`.

One query block against one document block is a matmul ``(query vectors, dim) @ (dim, doc
vectors)``, a segment max over the document boundaries (``np.maximum.reduceat``) and a sum
over each query's rows; blocks bound the score matrix to ``_BLOCK`` float32 entries. The
public, validating functions are in :mod:`embedlab.index.chamfer`.
"""

from __future__ import annotations

import numpy as np

from embedlab.index._rows import pad_results, topk_rows
from embedlab.index._token_sets import PackedSets
from embedlab.index._types import F32, I64

__all__ = ["chamfer_scores", "chamfer_top_k"]

# float32 entries of one block of the (query vectors x document vectors) score matrix: 64 MiB.
_BLOCK = 1 << 24
_DOC_BLOCK_ROWS = 1 << 15  # document vectors per block of an exact scan


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


def chamfer_scores(q: PackedSets, d: PackedSets) -> F32:
    """Chamfer ``(len(q), len(d))`` float32, blocked over documents, then queries."""
    out = np.empty((len(q), len(d)), np.float32)
    for da, db in _doc_blocks(d.offsets, _DOC_BLOCK_ROWS):
        dv = d.vectors[d.offsets[da] : d.offsets[db]]
        doff = d.offsets[da : db + 1] - d.offsets[da]
        for qa, qb in _query_blocks(q.offsets, _BLOCK // max(1, dv.shape[0])):
            out[qa:qb, da:db] = _scores_block(q, qa, qb, np.asarray(dv, np.float32), doff)
    return out


def chamfer_top_k(q: PackedSets, d: PackedSets, k: int) -> tuple[F32, I64]:
    """The best ``k`` document rows per query set, ``-1`` / ``-inf`` padded (``k`` capped
    by the caller)."""
    kk = min(k, len(d))
    out_s, out_p = [], []
    # whole score rows (n_q_block, n) at a time, so the top-k is taken once per query
    step = max(1, _BLOCK // max(1, len(d)))
    for a in range(0, len(q), step):
        sub = PackedSets(
            q.vectors[q.offsets[a] : q.offsets[min(a + step, len(q))]],
            q.offsets[a : min(a + step, len(q)) + 1] - q.offsets[a],
        )
        s, p = topk_rows(chamfer_scores(sub, d), kk)
        out_s.append(s)
        out_p.append(p)
    if not out_s:
        return pad_results(np.zeros((0, 0), np.float32), np.zeros((0, 0), np.int64), k)
    return pad_results(np.concatenate(out_s), np.concatenate(out_p), k)
