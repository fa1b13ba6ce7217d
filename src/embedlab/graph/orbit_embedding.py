"""Node embeddings from graphlet-orbit adjacencies (GRADCO completion).

Windels, Malod-Dognin, Przulj, "Graphlets correct for the topological information missed by
random walks" (2024): the orbit-adjacency matrices of :func:`~embedlab.graph.orbit_adjacencies`
replace the plain adjacency as the "context" of a node. Here each orbit-adjacency class is
embedded with FastRP (:func:`~embedlab.graph.fastrp`) and the results are combined:

- the two directed matrices of a pair of different orbits (``M_ij = M_ji^T``) are merged into
  the symmetric ``M_ij + M_ji``, so the 28 matrices give 20 symmetric ones (13 one-hop, 6
  two-hop, 1 three-hop); matrices without any entry (e.g. no K4 in the graph) are skipped;
- ``combine="concat"`` splits ``dim`` over the matrices (each its own FastRP with seed
  ``seed + index``) and concatenates them; ``combine="sum"`` gives every matrix the full
  ``dim`` with one shared random projection and sums the (standardised) embeddings.

``o0_o0_h1`` is the adjacency itself, so the plain FastRP context is one of the parts. The
paper feeds orbit adjacencies to random-walk embeddings; FastRP is our cheaper stand-in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from embedlab._validation import check_adjacency, check_choice, check_int
from embedlab.graph.fastrp import PAPER_WEIGHTS, fastrp
from embedlab.graph.graphlets import ORBIT_PAIRS, orbit_adjacencies

__all__ = ["COMBINE_MODES", "orbit_embedding", "symmetric_orbit_matrices"]

COMBINE_MODES = ("concat", "sum")


def symmetric_orbit_matrices(mats: Mapping[str, Any]) -> dict[str, sp.csr_matrix]:
    """Merge ``M_ij`` and ``M_ji`` into ``M_ij + M_ji``; keep the non-empty matrices.

    Args:
        mats: ``{name: (n, n) matrix}`` as returned by :func:`orbit_adjacencies` (any subset
            of hops).

    Returns:
        ``{name: (n, n) CSR float64}`` in :data:`ORBIT_PAIRS` order, named after the pair with
        ``orbit_u <= orbit_v`` (e.g. ``"o4_o5_h1"`` holds ``o4_o5_h1 + o5_o4_h1``).
    """
    out: dict[str, sp.csr_matrix] = {}
    for op in ORBIT_PAIRS:
        if op.name not in mats or op.orbit_u > op.orbit_v:
            continue
        mat = sp.csr_matrix(mats[op.name], dtype=np.float64)
        if op.orbit_u != op.orbit_v:
            partner = f"o{op.orbit_v}_o{op.orbit_u}_h{op.hop}"
            other = mats.get(partner)
            mat = sp.csr_matrix(mat + (mat.T if other is None else sp.csr_matrix(other)))
        mat.eliminate_zeros()
        if mat.nnz:
            out[op.name] = mat
    return out


def orbit_embedding(
    adj: Any,
    dim: int,
    *,
    hops: Sequence[int] = (1, 2, 3),
    combine: str = "concat",
    weights: Sequence[float] = PAPER_WEIGHTS,
    beta: float = -0.628,
    seed: int = 0,
    orbit_mats: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """FastRP embeddings of the graphlet-orbit adjacency matrices, combined.

    Args:
        adj: ``(n, n)`` symmetric adjacency without self-loops (weights ignored by the counts).
        dim: total embedding dimension; with ``concat`` it must be at least the number of
            non-empty orbit matrices.
        hops: which orbit matrices to count (``1``: 13 symmetric classes, ``2``: 6, ``3``: 1).
            Two- and three-hop matrices are nearly dense on social graphs: use ``(1,)`` there.
        combine: ``"concat"`` or ``"sum"`` (see the module docstring).
        weights, beta: FastRP iteration weights and degree exponent for every matrix.
        seed: seed of the random projections; the result is deterministic given it.
        orbit_mats: ready ``orbit_adjacencies(adj, hops=hops)`` output, to skip the counting.

    Returns:
        ``(n, dim)`` float32.

    Raises:
        ValueError: an empty graph (no node or no edge), ``dim`` too small for ``concat``.

    Example:
        >>> import numpy as np
        >>> a = np.triu(np.random.default_rng(0).random((60, 60)) < 0.1, 1).astype(float)
        >>> orbit_embedding(a + a.T, 40, seed=0).shape
        (60, 40)
    """
    mat = check_adjacency("adj", adj)
    dim = check_int("dim", dim, min_value=1)
    seed = check_int("seed", seed, min_value=0)
    combine = check_choice("combine", combine, COMBINE_MODES)
    n = mat.shape[0]
    if n == 0:
        raise ValueError("adj must have at least one node for orbit embeddings, got shape (0, 0)")
    if mat.nnz == 0:
        raise ValueError(
            f"adj must have at least one edge for orbit embeddings, got an empty graph of {n} nodes"
        )
    mats = orbit_adjacencies(mat, hops=hops) if orbit_mats is None else orbit_mats
    for name, m in mats.items():
        if m.shape != (n, n):
            raise ValueError(f"orbit_mats[{name!r}] must have shape ({n}, {n}), got {m.shape}")
    parts = symmetric_orbit_matrices(mats)
    if not parts:
        raise ValueError("orbit_mats must hold at least one non-empty orbit-adjacency matrix")
    k = len(parts)
    if combine == "sum":
        total = np.zeros((n, dim), dtype=np.float64)
        for m in parts.values():
            total += fastrp(m, dim, weights=weights, beta=beta, seed=seed)
        out: np.ndarray = (total / np.sqrt(k)).astype(np.float32)
        return out
    if dim < k:
        raise ValueError(
            f"dim must be >= the number of non-empty orbit matrices ({k}) with combine='concat', "
            f"got {dim}"
        )
    sizes = [dim // k + (1 if i < dim % k else 0) for i in range(k)]
    blocks = [
        fastrp(m, size, weights=weights, beta=beta, seed=seed + i)
        for i, (m, size) in enumerate(zip(parts.values(), sizes, strict=True))
    ]
    return np.concatenate(blocks, axis=1).astype(np.float32)
