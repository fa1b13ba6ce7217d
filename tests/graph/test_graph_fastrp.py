"""FastRP against a dense numpy reference of the paper's formula."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from embedlab.graph import PAPER_WEIGHTS, fastrp, sparse_random_projection


def _random_graph(n: int, p: float, seed: int, *, weighted: bool = False) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < p, 1).astype(float)
    if weighted:
        upper *= rng.uniform(0.5, 2.0, size=(n, n))
    return sp.csr_matrix(upper + upper.T)


def _dense_reference(
    adj: np.ndarray,
    r: np.ndarray,
    weights: tuple[float, ...],
    beta: float,
    normalization: bool,
    standardize: bool,
) -> np.ndarray:
    """Naive dense FastRP: A = D^-1 S, N1 = A D^beta R, Ni = A N(i-1), weighted sum."""
    deg = adj.sum(axis=1)
    inv = np.array([1.0 / d if d > 0 else 0.0 for d in deg])
    trans = np.diag(inv) @ adj
    lmat = np.diag([d**beta if d > 0 else 0.0 for d in deg])
    cur = trans @ lmat @ r
    out = np.zeros_like(cur)
    for i, w in enumerate(weights):
        if i:
            cur = trans @ cur
        term = cur.copy()
        if normalization:
            for row in range(term.shape[0]):
                norm = np.sqrt(np.sum(term[row] ** 2))
                term[row] = term[row] / norm if norm > 0 else 0.0
        out += w * term
    if standardize:
        mean = out.mean(axis=0)
        std = out.std(axis=0)
        std[std == 0] = 1.0
        out = (out - mean) / std
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("normalization", "standardize", "beta"),
    [(True, True, -0.628), (False, False, -0.3), (True, False, 0.0), (False, True, -1.0)],
)
def test_fastrp_equals_dense_reference(
    seed: int, normalization: bool, standardize: bool, beta: float
) -> None:
    adj = _random_graph(40, 0.12, seed, weighted=seed == 2)
    keep = sp.diags(np.r_[0.0, np.ones(39)])  # node 0 isolated: zero transition row
    adj = sp.csr_matrix(keep @ adj @ keep)
    adj.eliminate_zeros()
    r = sparse_random_projection(40, 16, seed=seed)
    got = fastrp(
        adj,
        16,
        weights=PAPER_WEIGHTS,
        beta=beta,
        normalization=normalization,
        standardize=standardize,
        seed=seed,
    )
    want = _dense_reference(
        adj.toarray(), r.toarray(), PAPER_WEIGHTS, beta, normalization, standardize
    )
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_projection_is_very_sparse_and_seeded() -> None:
    n, dim = 10_000, 64
    r = sparse_random_projection(n, dim, seed=3)
    s = np.sqrt(n)
    assert r.shape == (n, dim)
    density = r.nnz / (n * dim)
    assert abs(density - 1 / s) < 0.1 / s  # measured 0.00996 vs 0.01
    np.testing.assert_allclose(np.unique(np.abs(r.data)), [np.sqrt(s)])
    assert abs((r.data > 0).mean() - 0.5) < 0.02
    again = sparse_random_projection(n, dim, seed=3)
    assert (r != again).nnz == 0
    assert (r != sparse_random_projection(n, dim, seed=4)).nnz > 0


def test_fastrp_seeded_and_shapes() -> None:
    adj = _random_graph(60, 0.1, 0)
    a = fastrp(adj, 8, seed=5)
    b = fastrp(adj, 8, seed=5)
    c = fastrp(adj, 8, seed=6)
    assert a.shape == (60, 8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fastrp_accepts_dense_numpy() -> None:
    adj = _random_graph(30, 0.2, 1)
    np.testing.assert_allclose(fastrp(adj.toarray(), 4), fastrp(adj, 4))


def test_fastrp_errors() -> None:
    adj = _random_graph(10, 0.3, 0)
    with pytest.raises(ValueError, match="dim must be >= 1, got 0"):
        fastrp(adj, 0)
    with pytest.raises(ValueError, match="weights must be a non-empty sequence"):
        fastrp(adj, 4, weights=())
    with pytest.raises(ValueError, match="adj must be square"):
        fastrp(sp.csr_matrix(np.ones((3, 4))), 2)
    with pytest.raises(ValueError, match="non-negative edge weights"):
        fastrp(-adj, 2)
    with pytest.raises(ValueError, match=r"projection must have shape \(10, 4\)"):
        fastrp(adj, 4, projection=sp.csr_matrix((10, 3)))
    with pytest.raises(TypeError, match="normalization must be True or False"):
        fastrp(adj, 4, normalization=1)  # type: ignore[arg-type]
