"""Graphlet-orbit adjacency matrices for graphlets of up to four nodes (GRADCO).

Windels, Malod-Dognin, Przulj. "Graphlets correct for the topological information missed
by random walks" (2024).

Definition implemented here. Graphlets are the connected, induced subgraphs on 2-4 nodes
(G0 edge, G1 path P3, G2 triangle, G3 path P4, G4 star, G5 square C4, G6 paw, G7 diamond,
G8 K4) with the automorphism orbits of Przulj (2007), numbered 0-14:

    G0: 0      G1: end 1, middle 2     G2: 3      G3: end 4, middle 5
    G4: leaf 6, centre 7               G5: 8      G6: tail 9, triangle 10, attachment 11
    G7: degree-2 12, degree-3 13       G8: 14

For an ordered pair of orbits ``(i, j)`` and a hop ``h`` (the distance between the two nodes
inside the graphlet), the orbit-adjacency matrix has entry ``(u, v)`` = the number of
graphlets of the host graph in which ``u`` is on orbit ``i``, ``v`` is on orbit ``j`` and
``u``, ``v`` are ``h`` apart inside the graphlet. Node pairs of a graphlet split into 20
classes (13 adjacent, 6 at distance two, 1 at distance three); the 8 classes whose two
orbits differ give two matrices each, ``M[i, j] = M[j, i]^T``. That yields the 28 matrices
of GRADCO: 19 one-hop, 8 two-hop, 1 three-hop, named ``"o{i}_o{j}_h{h}"``.

How they are counted. For a pair ``(u, v)`` with ``a = A_uv`` split the other nodes into
common neighbours ``C``, private neighbours ``P_u`` (of ``u`` only), ``P_v`` and the rest
``O``. A 4-node graphlet through ``u, v`` is fixed by the classes of its other two nodes and
whether they are adjacent, so every count is a product of class sizes minus an edge count
between classes. Those edge counts follow from sparse products evaluated only at the pairs
needed (edges for one hop, distance-two pairs for two hops, ...):

    c = (A^2)_uv,  K = e(C, C) = (P P^T)_uv  (P: node x edge, "node closes a triangle on edge")
    W = (A o A^2) A  ->  e(C, P_u) = W_uv - a c - 2K
    A^3              ->  e(P_u, P_v) = (A^3)_uv - a (d_u + d_v - 1) - 2K - e(C,P_u) - e(C,P_v)
    t_u triangles    ->  e(P_u, P_u) = t_u - a c - K - e(C, P_u)
    A D A, A d       ->  e(C, O), e(P_u, O)   (degree sums over the classes)

``orbit_adjacencies_bruteforce`` enumerates every connected induced subgraph instead; it is
the reference of the tests (small graphs only).

Scale: one-hop matrices live on the edges and are cheap. Two-hop matrices live on the
pairs at distance two, three-hop on pairs at distance up to three: on a dense social graph
(BlogCatalog: ``A^2`` is 62 % dense) those are nearly dense ``n x n`` and should be
requested only for small graphs (``hops=(1,)`` otherwise).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from embedlab._validation import check_adjacency, check_int

__all__ = [
    "ORBIT_PAIRS",
    "OrbitPair",
    "orbit_adjacencies",
    "orbit_adjacencies_bruteforce",
]


@dataclass(frozen=True)
class OrbitPair:
    """One orbit-adjacency matrix: ``u`` on ``orbit_u``, ``v`` on ``orbit_v``, ``hop`` apart."""

    graphlet: int
    orbit_u: int
    orbit_v: int
    hop: int

    @property
    def name(self) -> str:
        """Short name ``o{orbit_u}_o{orbit_v}_h{hop}``, e.g. ``"o4_o5_h1"``."""
        return f"o{self.orbit_u}_o{self.orbit_v}_h{self.hop}"


def _pairs() -> tuple[OrbitPair, ...]:
    spec = [
        # one hop (adjacent in the graphlet): 19
        (0, 0, 0, 1),
        (1, 1, 2, 1),
        (1, 2, 1, 1),
        (2, 3, 3, 1),
        (3, 4, 5, 1),
        (3, 5, 4, 1),
        (3, 5, 5, 1),
        (4, 6, 7, 1),
        (4, 7, 6, 1),
        (5, 8, 8, 1),
        (6, 9, 11, 1),
        (6, 11, 9, 1),
        (6, 10, 10, 1),
        (6, 10, 11, 1),
        (6, 11, 10, 1),
        (7, 12, 13, 1),
        (7, 13, 12, 1),
        (7, 13, 13, 1),
        (8, 14, 14, 1),
        # two hops: 8
        (1, 1, 1, 2),
        (3, 4, 5, 2),
        (3, 5, 4, 2),
        (4, 6, 6, 2),
        (5, 8, 8, 2),
        (6, 9, 10, 2),
        (6, 10, 9, 2),
        (7, 12, 12, 2),
        # three hops: 1
        (3, 4, 4, 3),
    ]
    return tuple(OrbitPair(*s) for s in spec)


ORBIT_PAIRS: tuple[OrbitPair, ...] = _pairs()
"""The 28 orbit pairs in output order (19 one-hop, 8 two-hop, 1 three-hop)."""


def _binary(adj: Any) -> sp.csr_matrix:
    mat = check_adjacency("adj", adj)
    if np.count_nonzero(mat.diagonal()):
        raise ValueError(
            "adj must have no self-loops for graphlet counting, got "
            f"{int(np.count_nonzero(mat.diagonal()))}; drop them first (the loaders do)"
        )
    if (mat != mat.T).nnz:
        raise ValueError("adj must be symmetric (an undirected graph)")
    out = sp.csr_matrix((np.ones(mat.nnz), mat.indices, mat.indptr), shape=mat.shape)
    out.sort_indices()
    return out


def _check_hops(hops: Iterable[int]) -> tuple[int, ...]:
    out = tuple(sorted({check_int("hop", h, min_value=1) for h in hops}))
    if not out or out[-1] > 3:
        raise ValueError(f"hops must be a non-empty subset of (1, 2, 3), got {tuple(hops)}")
    return out


def _triangle_incidence(a: sp.csr_matrix, block: int = 20000) -> sp.csr_matrix:
    """``P^T``: ``(n_edges, n)`` CSR, row ``e = (w, x)`` marks the nodes adjacent to both."""
    upper = sp.triu(a, k=1).tocoo()
    w, x = upper.row, upper.col
    parts = []
    for start in range(0, w.size, block):
        sl = slice(start, start + block)
        parts.append(sp.csr_matrix(a[w[sl]].multiply(a[x[sl]])))
    if not parts:
        return sp.csr_matrix((0, a.shape[0]))
    return sp.csr_matrix(sp.vstack(parts, format="csr"))


def _sample(mat: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Values of ``mat`` at ``(rows, cols)``: dense arrays index directly, sparse via CSR."""
    if rows.size == 0:
        return np.zeros(0)
    if isinstance(mat, np.ndarray):
        return np.asarray(mat[rows, cols], dtype=np.float64)
    return np.asarray(mat[rows, cols], dtype=np.float64).reshape(-1)


def _choose2(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x * (x - 1) / 2
    return out


def orbit_adjacencies(
    adj: Any,
    *,
    hops: Sequence[int] = (1, 2, 3),
    block_size: int = 512,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, sp.csr_matrix]:
    """The orbit-adjacency matrices of all up-to-4-node graphlets (see the module docstring).

    Args:
        adj: ``(n, n)`` symmetric adjacency without self-loops; weights are ignored.
        hops: which matrices to compute: ``1`` (19 matrices), ``2`` (8), ``3`` (1).
        block_size: rows processed at once; memory grows with ``block_size * n``.
        progress: called as ``progress(done_rows, n)`` after each block.

    Returns:
        ``{name: (n, n) CSR int64}`` in :data:`ORBIT_PAIRS` order, e.g. ``"o4_o5_h1"``.

    Example:
        >>> import scipy.sparse as sp
        >>> path = sp.csr_matrix(([1.0] * 6, ([0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2])), (4, 4))
        >>> int(orbit_adjacencies(path)["o4_o4_h3"][0, 3])
        1
    """
    a = _binary(adj)
    wanted = _check_hops(hops)
    block_size = check_int("block_size", block_size, min_value=1)
    n = a.shape[0]
    deg = np.asarray(a.sum(axis=1)).reshape(-1)
    ad = a @ deg
    a_deg = sp.csr_matrix(a.multiply(deg[None, :]))
    # Triangles per edge (A o A^2) and per node, without forming A^2 for the whole graph.
    tri_edge = sp.csr_matrix(
        sp.vstack(
            [
                sp.csr_matrix(a[s : s + block_size].multiply(a[s : s + block_size] @ a))
                for s in range(0, n, block_size)
            ]
            or [sp.csr_matrix((0, n))],
            format="csr",
        )
    )
    tri_node = np.asarray(tri_edge.sum(axis=1)).reshape(-1) / 2
    pt = _triangle_incidence(a)
    p = sp.csr_matrix(pt.T)
    need3 = 1 in wanted or 3 in wanted

    coo: dict[str, tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]] = {
        op.name: ([], [], []) for op in ORBIT_PAIRS if op.hop in wanted
    }

    def emit(name: str, r: np.ndarray, c: np.ndarray, val: np.ndarray) -> None:
        keep = val != 0
        coo[name][0].append(r[keep])
        coo[name][1].append(c[keep])
        coo[name][2].append(val[keep])

    for start in range(0, n, block_size):
        rows_idx = np.arange(start, min(start + block_size, n))
        a_b = a[rows_idx]
        a2_b = sp.csr_matrix(a_b @ a)
        k_b = sp.csr_matrix(p[rows_idx] @ pt)
        w_b = sp.csr_matrix(tri_edge[rows_idx] @ a)  # W_uv
        wt_b = sp.csr_matrix(a_b @ tri_edge)  # W_vu
        r_b = sp.csr_matrix(a_deg[rows_idx] @ a)  # (A D A)_uv
        a3_b: Any = None
        if need3:
            # A^3 rows are dense-ish on social graphs: (A @ A2_B^T)^T as sparse x dense.
            a3_b = np.asarray(a @ a2_b.T.toarray()).T

        # Pair sets of this block: local row r, global column v.
        sets: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if 1 in wanted:
            m1 = a_b.tocoo()
            sets[1] = (m1.row, m1.col)
        nonadj_mask: Any = None
        if 2 in wanted or 3 in wanted:
            eye_b = sp.csr_matrix(
                (np.ones(rows_idx.size), (np.arange(rows_idx.size), rows_idx)),
                shape=(rows_idx.size, n),
            )
            nonadj_mask = (a_b + eye_b).astype(bool)
        if 2 in wanted:
            m2 = sp.csr_matrix(a2_b.astype(bool) > nonadj_mask).tocoo()
            sets[2] = (m2.row, m2.col)
        if 3 in wanted:
            m3 = sp.csr_matrix(sp.csr_matrix(a3_b != 0) > nonadj_mask).tocoo()
            sets[3] = (m3.row, m3.col)

        for hop, (r, v) in sets.items():
            u = rows_idx[r]
            aa = 1.0 if hop == 1 else 0.0
            c = _sample(a2_b, r, v)
            k = _sample(k_b, r, v)
            x_u = _sample(w_b, r, v) - aa * c - 2 * k
            x_v = _sample(wt_b, r, v) - aa * c - 2 * k
            d_u, d_v = deg[u], deg[v]
            p_u = d_u - aa - c
            p_v = d_v - aa - c
            if hop == 2:
                emit("o1_o1_h2", r + start, v, c)
                emit("o4_o5_h2", r + start, v, c * p_v - x_v)
                emit("o5_o4_h2", r + start, v, c * p_u - x_u)
                emit("o8_o8_h2", r + start, v, _choose2(c) - k)
                emit("o9_o10_h2", r + start, v, x_v)
                emit("o10_o9_h2", r + start, v, x_u)
                emit("o12_o12_h2", r + start, v, k)
                rr = _sample(r_b, r, v)
                emit("o6_o6_h2", r + start, v, rr - 2 * c - 2 * k - x_u - x_v)
                continue
            y = _sample(a3_b, r, v) - aa * (d_u + d_v - 1) - 2 * k - x_u - x_v
            if hop == 3:
                emit("o4_o4_h3", r + start, v, y)
                continue
            z_u = tri_node[u] - c - k - x_u
            z_v = tri_node[v] - c - k - x_v
            rr = _sample(r_b, r, v)
            e_co = rr - 2 * c - 2 * k - x_u - x_v
            e_puo = (ad[u] - d_v - rr) - p_u - x_u - 2 * z_u - y
            e_pvo = (ad[v] - d_u - rr) - p_v - x_v - 2 * z_v - y
            emit("o0_o0_h1", r + start, v, np.ones_like(c))
            emit("o1_o2_h1", r + start, v, p_v)
            emit("o2_o1_h1", r + start, v, p_u)
            emit("o3_o3_h1", r + start, v, c)
            emit("o4_o5_h1", r + start, v, e_pvo)
            emit("o5_o4_h1", r + start, v, e_puo)
            emit("o5_o5_h1", r + start, v, p_u * p_v - y)
            emit("o6_o7_h1", r + start, v, _choose2(p_v) - z_v)
            emit("o7_o6_h1", r + start, v, _choose2(p_u) - z_u)
            emit("o8_o8_h1", r + start, v, y)
            emit("o9_o11_h1", r + start, v, z_v)
            emit("o11_o9_h1", r + start, v, z_u)
            emit("o10_o10_h1", r + start, v, e_co)
            emit("o10_o11_h1", r + start, v, c * p_v - x_v)
            emit("o11_o10_h1", r + start, v, c * p_u - x_u)
            emit("o12_o13_h1", r + start, v, x_v)
            emit("o13_o12_h1", r + start, v, x_u)
            emit("o13_o13_h1", r + start, v, _choose2(c) - k)
            emit("o14_o14_h1", r + start, v, k)
        if progress is not None:
            progress(int(rows_idx[-1]) + 1, n)

    out: dict[str, sp.csr_matrix] = {}
    for op in ORBIT_PAIRS:
        if op.name not in coo:
            continue
        rs, cs, vs = coo[op.name]
        row = np.concatenate(rs) if rs else np.zeros(0, dtype=np.int64)
        col = np.concatenate(cs) if cs else np.zeros(0, dtype=np.int64)
        val = np.rint(np.concatenate(vs)).astype(np.int64) if vs else np.zeros(0, np.int64)
        mat = sp.csr_matrix((val, (row, col)), shape=(n, n), dtype=np.int64)
        mat.sort_indices()
        out[op.name] = mat
    return out


# --- brute-force reference --------------------------------------------------------------

_ORBIT_BY_DEGREE: dict[tuple[int, int, int], dict[int, int]] = {
    # (n_nodes, n_edges, max degree) -> {degree in graphlet: orbit}
    (2, 1, 1): {1: 0},
    (3, 2, 2): {1: 1, 2: 2},
    (3, 3, 2): {2: 3},
    (4, 3, 2): {1: 4, 2: 5},
    (4, 3, 3): {1: 6, 3: 7},
    (4, 4, 2): {2: 8},
    (4, 4, 3): {1: 9, 2: 10, 3: 11},
    (4, 5, 3): {2: 12, 3: 13},
    (4, 6, 3): {3: 14},
}


def orbit_adjacencies_bruteforce(adj: Any, *, max_nodes: int = 40) -> dict[str, sp.csr_matrix]:
    """Reference: enumerate every connected induced 2-, 3- and 4-node subgraph.

    ``O(n^4)``; refuses graphs with more than ``max_nodes`` nodes.
    """
    a = _binary(adj)
    n = a.shape[0]
    if n > max_nodes:
        raise ValueError(f"brute force is O(n^4): adj must have <= {max_nodes} nodes, got {n}")
    dense = a.toarray().astype(bool)
    counts: dict[str, np.ndarray] = {
        op.name: np.zeros((n, n), dtype=np.int64) for op in ORBIT_PAIRS
    }
    for size in (2, 3, 4):
        for nodes in itertools.combinations(range(n), size):
            sub = dense[np.ix_(nodes, nodes)]
            n_edges = int(sub.sum()) // 2
            degs = sub.sum(axis=1)
            key = (size, n_edges, int(degs.max()))
            if key not in _ORBIT_BY_DEGREE:
                continue  # disconnected
            orbit = _ORBIT_BY_DEGREE[key]
            # all-pairs distances inside the graphlet (<= 4 nodes: Floyd-Warshall)
            dist = np.where(sub, 1, 99)
            np.fill_diagonal(dist, 0)
            for mid in range(size):
                dist = np.minimum(dist, dist[:, [mid]] + dist[[mid], :])
            if dist.max() >= 99:
                continue  # triangle plus an isolated node has the key of a path
            for i, j in itertools.permutations(range(size), 2):
                name = f"o{orbit[int(degs[i])]}_o{orbit[int(degs[j])]}_h{int(dist[i, j])}"
                counts[name][nodes[i], nodes[j]] += 1
    return {name: sp.csr_matrix(m) for name, m in counts.items()}
