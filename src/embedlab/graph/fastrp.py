"""FastRP: node embeddings by very sparse random projection of powers of the transition matrix.

Chen, Sun, Ma, Huang, Yang, Zhang, Zhou. "Fast and Accurate Network Embeddings via Very
Sparse Random Projection", CIKM 2019.

With ``S`` the adjacency, ``D`` its degree matrix and ``A = D^-1 S`` the transition matrix::

    R   : (n, dim) very sparse random projection, entries sqrt(s) * {+1, 0, -1}
          with probabilities 1/(2s), 1 - 1/s, 1/(2s) and s = sqrt(n)
    L   = D^beta                       degree normalisation, applied to the rows of R
    N_1 = A (L R),  N_i = A N_{i-1}    i = 2 .. q
    U   = sum_i alpha_i * normalize_rows(N_i)      (row L2 normalisation if ``normalization``)
    U   = standardize_columns(U)                   (if ``standardize``)

The order follows the authors' reference code (GTmac/FastRP ``fastrp.py``): the degree
normalisation multiplies the projection matrix, each power is L2-normalised by rows
*before* the weighted sum, and the sum is standardised per column (sklearn ``scale``) at
the end. Everything is ``scipy.sparse`` times ``(n, dim)``; nothing of size ``n x n`` is
ever dense. Isolated nodes (degree 0) get a zero row before standardisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from embedlab._validation import (
    check_adjacency,
    check_bool,
    check_finite,
    check_int,
    check_positive_float,
)

__all__ = ["PAPER_WEIGHTS", "fastrp", "sparse_random_projection", "transition_matrix"]

PAPER_WEIGHTS: tuple[float, ...] = (1.0, 1.0, 7.81, 45.28)
"""Iteration weights of the paper's BlogCatalog setting (with ``beta=-0.628``, dim 512)."""


def sparse_random_projection(
    n: int, dim: int, *, seed: int = 0, density: float | None = None
) -> sp.csr_matrix:
    """Very sparse random projection matrix (Li, Hastie, Church 2006).

    Args:
        n: rows (nodes).
        dim: columns (embedding dimension).
        seed: seed of the numpy ``Generator``; the same seed gives the same matrix.
        density: fraction of non-zeros ``1/s``; default ``1/sqrt(n)``.

    Returns:
        ``(n, dim)`` CSR float64 with entries ``+-sqrt(s)`` (each with probability
        ``1/(2s)``) and zeros elsewhere.
    """
    n = check_int("n", n, min_value=1)
    dim = check_int("dim", dim, min_value=1)
    if density is None:
        density = 1.0 / math.sqrt(n)
    density = check_positive_float("density", density)
    if density > 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    rng = np.random.default_rng(seed)
    scale = math.sqrt(1.0 / density)
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    counts = rng.binomial(n, density, size=dim)
    for j, k in enumerate(counts):
        rows.append(rng.choice(n, size=int(k), replace=False))
        cols.append(np.full(int(k), j, dtype=np.int64))
    row = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    col = np.concatenate(cols) if cols else np.empty(0, dtype=np.int64)
    signs = rng.choice(np.array([-1.0, 1.0]), size=row.size)
    return sp.csr_matrix((signs * scale, (row, col)), shape=(n, dim))


def transition_matrix(adj: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """``A = D^-1 S`` and the degree vector ``d`` (rows of isolated nodes stay zero)."""
    deg = np.asarray(adj.sum(axis=1)).reshape(-1)
    inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    return sp.csr_matrix(sp.diags(inv) @ adj), deg


def _normalize_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: np.ndarray = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return out


def _standardize(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0)
    std[std == 0] = 1.0
    out: np.ndarray = (x - x.mean(axis=0)) / std
    return out


def fastrp(
    adj: Any,
    dim: int,
    *,
    weights: Sequence[float] = PAPER_WEIGHTS,
    beta: float = -0.628,
    normalization: bool = True,
    standardize: bool = True,
    seed: int = 0,
    projection: sp.spmatrix | None = None,
) -> np.ndarray:
    """FastRP node embeddings.

    Args:
        adj: ``(n, n)`` symmetric adjacency (scipy sparse or numpy), non-negative weights.
        dim: embedding dimension.
        weights: ``alpha_1 .. alpha_q``, one per power of the transition matrix.
        beta: degree-normalisation exponent ``L = D^beta`` (``0`` switches it off).
        normalization: L2-normalise the rows of each ``N_i`` before the weighted sum.
        standardize: standardise each column of the sum (zero mean, unit variance).
        seed: seed of the random projection.
        projection: a ready ``(n, dim)`` projection matrix instead of drawing one (tests).

    Returns:
        ``(n, dim)`` float32 embeddings; row ``i`` is node ``i``.

    Example:
        >>> import scipy.sparse as sp
        >>> adj = sp.random(100, 100, density=0.05, random_state=0)
        >>> emb = fastrp(adj + adj.T, 16, seed=0)
        >>> emb.shape
        (100, 16)
    """
    mat = check_adjacency("adj", adj)
    dim = check_int("dim", dim, min_value=1)
    seed = check_int("seed", seed, min_value=0)
    beta = float(beta)
    check_finite("beta", np.array([beta]))
    normalization = check_bool("normalization", normalization)
    standardize = check_bool("standardize", standardize)
    alphas = np.asarray(list(weights), dtype=np.float64)
    if alphas.ndim != 1 or alphas.size == 0:
        raise ValueError(f"weights must be a non-empty sequence of numbers, got {weights!r}")
    check_finite("weights", alphas)
    n = mat.shape[0]
    if n == 0:
        raise ValueError("adj must have at least one node, got shape (0, 0)")

    trans, deg = transition_matrix(mat)
    if projection is None:
        proj = sparse_random_projection(n, dim, seed=seed)
    else:
        proj = sp.csr_matrix(projection, dtype=np.float64)
        if proj.shape != (n, dim):
            raise ValueError(f"projection must have shape ({n}, {dim}), got {proj.shape}")
    lvec = np.power(deg, beta, out=np.zeros_like(deg), where=deg > 0)
    cur = np.asarray((trans @ (sp.diags(lvec) @ proj)).toarray())  # N_1: (n, dim)
    out = np.zeros((n, dim), dtype=np.float64)
    for i, alpha in enumerate(alphas):
        if i > 0:
            cur = np.asarray(trans @ cur)  # N_i = A N_{i-1}: (n, dim)
        out += alpha * (_normalize_rows(cur) if normalization else cur)
    if standardize:
        out = _standardize(out)
    return out.astype(np.float32)
