"""Numba kernels that build and repair the ACORN-style graph (:mod:`embedlab.index.acorn`):
edge insertion, the neighbour-list order (HNSW's selection heuristic for the prefix), reverse
candidates and deletion repair, with the drivers that run them (exact candidates of a block,
the two-pass re-ordering of lists). The search kernels are in :mod:`._acorn_kernels`."""

from __future__ import annotations

import numpy as np

from embedlab.index._acorn_kernels import B8, I32, _in_threads, _jit, _score
from embedlab.index._acorn_search import VisitedMarks, run_search
from embedlab.index._base import F32, Metric, topk_rows
from embedlab.index.flat import pairwise_scores

__all__ = [
    "_insert_edge",
    "_link",
    "_repair",
    "_select_prefix",
    "exact_candidates",
    "link_batch",
    "reorder_lists",
    "reverse_candidates",
    "select_lists",
]


@_jit
def _insert_edge(nbrs: I32, nbr_s: F32, v: int, u: int, s: float) -> bool:
    """Add ``u`` (score ``s``) to ``v``'s list: append if there is room, else replace the worst
    entry when ``u`` is better. Lists are compact (``-1`` only at the tail), in any order.
    Returns whether the list changed."""
    deg = nbrs.shape[1]
    worst = 0
    for i in range(deg):
        w = nbrs[v, i]
        if w == u:
            return False
        if w < 0:
            nbrs[v, i] = u
            nbr_s[v, i] = s
            return True
        if nbr_s[v, i] < nbr_s[v, worst]:
            worst = i
    if s > nbr_s[v, worst]:
        nbrs[v, worst] = u
        nbr_s[v, worst] = s
        return True
    return False


@_jit
def _link(nbrs: I32, nbr_s: F32, nodes: I32, cand: I32, cand_s: F32, touched: B8) -> None:
    """Give each new node its candidate list (best first, -1 padded), then add reverse edges;
    ``touched`` marks every list that changed."""
    deg = nbrs.shape[1]
    for b in range(nodes.shape[0]):
        u = nodes[b]
        touched[u] = True
        for j in range(min(cand.shape[1], deg)):
            v = cand[b, j]
            if v < 0:
                break
            nbrs[u, j] = v
            nbr_s[u, j] = cand_s[b, j]
    for b in range(nodes.shape[0]):
        u = nodes[b]
        for j in range(deg):
            v = nbrs[u, j]
            if v < 0:
                break
            if _insert_edge(nbrs, nbr_s, v, u, nbr_s[u, j]):
                touched[v] = True


@_jit
def _select_prefix(
    x: F32,
    x_sq: F32,
    l2: bool,
    nbrs: I32,
    nbr_s: F32,
    nodes: I32,
    extra: I32,
    m: int,
    t: int,
    n_chunks: int,
    out_n: I32,
    out_s: F32,
) -> None:
    """New lists for ``nodes``: a prefix chosen by HNSW's heuristic, then the nearest rest.

    The candidates of node ``u`` are its list plus ``extra[b]`` (reverse candidates, ``-1``
    padded). Going through them best first, ``c`` joins the prefix when it is closer to ``u``
    than to every node already in it (Malkov & Yashunin 2018, Algorithm 4: the rule keeps
    links that leave dense clusters), until ``m`` joined. The rest of ``u``'s own list follows,
    best first, up to the list capacity; ties are broken by lower node number. Reads the
    current lists and writes chunk ``t`` of the new ones into ``out_n``/``out_s``
    (``-1``/``-inf`` filled), so the result does not depend on threads.
    """
    n, deg = nbrs.shape
    n_extra = extra.shape[1]
    b_total = nodes.shape[0]
    per = (b_total + n_chunks - 1) // n_chunks
    mark = np.zeros(n, dtype=np.int32)
    cand_v = np.empty(deg + n_extra, dtype=np.int32)
    cand_s = np.empty(deg + n_extra, dtype=np.float32)
    chosen = np.zeros(deg + n_extra, dtype=np.bool_)
    kept_v = np.empty(max(m, 1), dtype=np.int32)
    for b in range(t * per, min(b_total, (t + 1) * per)):
        u = nodes[b]
        epoch = b + 1
        mark[u] = epoch  # no self loops
        c = 0
        for i in range(deg):
            v = nbrs[u, i]
            if v < 0:
                break
            if mark[v] != epoch:
                mark[v] = epoch
                cand_v[c] = v
                cand_s[c] = nbr_s[u, i]
                c += 1
        n_own = c
        u_sq = x_sq[u] if l2 else 0.0
        for i in range(n_extra):
            v = extra[b, i]
            if v < 0:
                break
            if mark[v] != epoch:
                mark[v] = epoch
                cand_v[c] = v
                cand_s[c] = _score(x, x_sq, l2, x[u], u_sq, v)
                c += 1
        by_node = np.argsort(cand_v[:c], kind="mergesort")
        order = by_node[np.argsort(-cand_s[:c][by_node], kind="mergesort")]
        chosen[:c] = False
        kept = 0
        for idx in order:
            if kept >= m:
                break
            v = cand_v[idx]
            v_sq = x_sq[v] if l2 else 0.0
            ok = True
            for j in range(kept):
                if _score(x, x_sq, l2, x[v], v_sq, kept_v[j]) > cand_s[idx]:
                    ok = False
                    break
            if ok:
                chosen[idx] = True
                kept_v[kept] = v
                out_n[b, kept] = v
                out_s[b, kept] = cand_s[idx]
                kept += 1
        pos = kept
        for idx in order:
            if pos >= deg:
                break
            if idx < n_own and not chosen[idx]:
                out_n[b, pos] = cand_v[idx]
                out_s[b, pos] = cand_s[idx]
                pos += 1


def reverse_candidates(nbrs: I32, nbr_s: F32, m: int, cap: int, nodes: I32) -> I32:
    """For each of ``nodes``, up to ``cap`` nodes ``u`` that have it among the first ``m``
    entries of their list, highest score first (ties by lower ``u``): ``(len(nodes), cap)``,
    ``-1`` padded. These are the reverse links HNSW adds on insertion; :func:`_select_prefix`
    weighs them against the node's own list."""
    n = nbrs.shape[0]
    row_of = np.full(n, -1, np.int64)
    row_of[nodes] = np.arange(nodes.size)
    head = nbrs[:, :m]
    src = np.repeat(np.arange(n, dtype=np.int32), head.shape[1])
    dst = head.ravel()
    score = nbr_s[:, :m].ravel()
    wanted = dst >= 0
    wanted[wanted] = row_of[dst[wanted]] >= 0
    src, dst, score = src[wanted], dst[wanted], score[wanted]
    order = np.lexsort((src, -score, dst))
    src, dst = src[order], dst[order]
    rank = np.arange(dst.size) - np.searchsorted(dst, dst, side="left")
    keep = rank < cap
    out = np.full((nodes.size, cap), -1, np.int32)
    out[row_of[dst[keep]], rank[keep]] = src[keep]
    return out


@_jit
def _repair(
    x: F32,
    x_sq: F32,
    l2: bool,
    nbrs: I32,
    nbr_s: F32,
    removed: B8,
    t: int,
    n_chunks: int,
) -> None:
    """Replace edges to removed nodes by the best surviving 1- and 2-hop neighbours (chunk
    ``t`` of ``n_chunks`` of the nodes; each writes only its own lists)."""
    n, deg = nbrs.shape
    per = (n + n_chunks - 1) // n_chunks
    seen = np.zeros(n, dtype=np.int32)
    keys = np.empty(deg * (deg + 1), dtype=np.float32)
    vals = np.empty(deg * (deg + 1), dtype=np.int32)
    for p in range(t * per, min(n, (t + 1) * per)):
        if removed[p]:
            continue
        hit = False
        for i in range(deg):
            v = nbrs[p, i]
            if v < 0:
                break
            if removed[v]:
                hit = True
                break
        if not hit:
            continue
        mark = p + 1
        seen[p] = mark
        m = 0
        for i in range(deg):
            v = nbrs[p, i]
            if v < 0:
                break
            if not removed[v]:
                if seen[v] != mark:
                    seen[v] = mark
                    keys[m] = nbr_s[p, i]
                    vals[m] = v
                    m += 1
                continue
            for j in range(deg):
                w = nbrs[v, j]
                if w < 0:
                    break
                if removed[w] or seen[w] == mark:
                    continue
                seen[w] = mark
                q_sq = x_sq[p] if l2 else 0.0
                keys[m] = _score(x, x_sq, l2, x[p], q_sq, w)
                vals[m] = w
                m += 1
        by_node = np.argsort(vals[:m], kind="mergesort")
        order = by_node[np.argsort(-keys[:m][by_node], kind="mergesort")]
        for i in range(deg):
            if i < m:
                nbrs[p, i] = vals[order[i]]
                nbr_s[p, i] = keys[order[i]]
            else:
                nbrs[p, i] = -1
                nbr_s[p, i] = -np.inf


def exact_candidates(x: F32, nodes: I32, metric: Metric, degree: int) -> tuple[I32, F32]:
    """Exact ``degree`` nearest neighbours of each of ``nodes`` among ``nodes``:
    ``(node numbers, scores)``, each ``(len(nodes), degree)``, best first."""
    s = pairwise_scores(x[nodes], x[nodes], metric)
    np.fill_diagonal(s, -np.inf)  # no self loops
    ts, cols = topk_rows(s, degree)
    cand = np.full((nodes.size, degree), -1, np.int32)
    cand_s = np.full((nodes.size, degree), -np.inf, np.float32)
    cand[:, : cols.shape[1]] = np.where(np.isfinite(ts), nodes[cols], -1)
    cand_s[:, : cols.shape[1]] = ts
    return cand, cand_s


def select_lists(
    x: F32,
    x_sq: F32,
    l2: bool,
    nbrs: I32,
    nbr_s: F32,
    nodes: I32,
    extra: I32,
    m: int,
    degree: int,
) -> tuple[I32, F32]:
    """New lists ``(len(nodes), degree)`` for ``nodes`` by :func:`_select_prefix`, in threads."""
    out_n = np.full((nodes.size, degree), -1, np.int32)
    out_s = np.full((nodes.size, degree), -np.inf, np.float32)

    def chunk(t: int, n_chunks: int) -> None:
        _select_prefix(x, x_sq, l2, nbrs, nbr_s, nodes, extra, m, t, n_chunks, out_n, out_s)

    _in_threads(chunk, int(nodes.size), 256)
    return out_n, out_s


def reorder_lists(
    x: F32, x_sq: F32, l2: bool, nbrs: I32, nbr_s: F32, nodes: I32, m: int, degree: int
) -> None:
    """Re-order the lists of ``nodes`` in place: a prefix by HNSW's selection heuristic, then
    the nearest rest (:func:`_select_prefix`), in two passes. The second pass also weighs
    the reverse links of the first pass' result (nodes that have the node among their
    first ``m`` entries), as HNSW does when it links a new node both ways: measured on
    100k x 384 clustered vectors, recall@10 (ef 64) went from 0.985 (first pass only,
    0.979) to 0.992."""
    if not nodes.size:
        return
    extra: I32 = np.full((nodes.size, 0), -1, np.int32)
    for _ in range(2):
        nbrs[nodes], nbr_s[nodes] = select_lists(x, x_sq, l2, nbrs, nbr_s, nodes, extra, m, degree)
        extra = reverse_candidates(nbrs, nbr_s, m, 2 * m, nodes)


def link_batch(
    x: F32,
    x_sq: F32,
    batch: I32,
    present: B8,
    nbrs: I32,
    nbr_s: F32,
    touched: B8,
    sample: I32,
    *,
    marks: VisitedMarks,
    metric: Metric,
    m: int,
    degree: int,
    n_entry: int,
    ef: int,
) -> None:
    """Insert the nodes ``batch``: a graph search of width ``ef`` among the ``present`` nodes
    (entered from the best of ``sample``, sorted present nodes) plus the exact neighbours
    within the batch give each its ``degree`` best candidates, then :func:`_link`."""
    # Nodes not inserted yet are masked out (``present``) of the whole-size arrays.
    xb = x[batch]
    _, cols = topk_rows(pairwise_scores(xb, x[sample], metric), n_entry)
    ent = np.full((batch.size, n_entry), -1, np.int32)
    ent[:, : cols.shape[1]] = sample[cols]
    l2 = metric == "l2"
    gs, gi = run_search(marks, x, x_sq, l2, nbrs, xb, (ent, ent), ef, ef, m, present, False, 0)
    s = pairwise_scores(xb, xb, metric)  # within the batch, exact
    np.fill_diagonal(s, -np.inf)
    bs, bc = topk_rows(s, degree)
    bi = np.where(np.isfinite(bs), batch[bc], -1).astype(np.int32)
    all_s = np.concatenate([gs, bs], axis=1)
    all_i = np.concatenate([gi, bi], axis=1)
    ts, cols = topk_rows(all_s, degree)
    cand = np.where(np.isfinite(ts), np.take_along_axis(all_i, cols, axis=1), -1)
    _link(nbrs, nbr_s, batch, cand.astype(np.int32), ts, touched)
