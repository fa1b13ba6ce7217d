"""Graphlet-orbit adjacency matrices against brute-force enumeration."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from embedlab.graph import ORBIT_PAIRS, orbit_adjacencies, orbit_adjacencies_bruteforce


def _random_graph(n: int, p: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < p, 1).astype(float)
    return sp.csr_matrix(upper + upper.T)


def test_28_matrices_19_8_1() -> None:
    hops = [op.hop for op in ORBIT_PAIRS]
    assert len(ORBIT_PAIRS) == 28
    assert (hops.count(1), hops.count(2), hops.count(3)) == (19, 8, 1)
    assert len({op.name for op in ORBIT_PAIRS}) == 28


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("p", [0.15, 0.3, 0.5, 0.8])
def test_orbits_equal_brute_force(seed: int, p: float) -> None:
    n = 8 + seed % 5  # 8 .. 12 nodes
    adj = _random_graph(n, p, seed)
    fast = orbit_adjacencies(adj, block_size=3)  # several row blocks
    ref = orbit_adjacencies_bruteforce(adj)
    assert list(fast) == [op.name for op in ORBIT_PAIRS]
    for name, mat in ref.items():
        assert fast[name].dtype == np.int64
        np.testing.assert_array_equal(fast[name].toarray(), mat.toarray(), err_msg=name)


def test_orbits_path_and_star_by_hand() -> None:
    # path 0-1-2-3
    path = sp.csr_matrix(([1.0] * 6, ([0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2])), shape=(4, 4))
    m = orbit_adjacencies(path)
    assert m["o4_o4_h3"][0, 3] == 1 and m["o4_o4_h3"].nnz == 2
    assert m["o4_o5_h1"][0, 1] == 1 and m["o5_o4_h1"][1, 0] == 1
    assert m["o5_o5_h1"][1, 2] == 1
    assert m["o1_o1_h2"][0, 2] == 1
    assert m["o14_o14_h1"].nnz == 0
    # K4: every pair is in one K4 and two triangles
    k4 = sp.csr_matrix(np.ones((4, 4)) - np.eye(4))
    m = orbit_adjacencies(k4)
    np.testing.assert_array_equal(m["o14_o14_h1"].toarray(), k4.toarray())
    np.testing.assert_array_equal(m["o3_o3_h1"].toarray(), 2 * k4.toarray())


def test_asymmetric_pairs_are_transposes() -> None:
    adj = _random_graph(30, 0.2, 7)
    m = orbit_adjacencies(adj)
    for op in ORBIT_PAIRS:
        twin = f"o{op.orbit_v}_o{op.orbit_u}_h{op.hop}"
        assert (m[op.name] != m[twin].T).nnz == 0, op.name


def test_hops_subset_matches_full() -> None:
    adj = _random_graph(25, 0.25, 3)
    full = orbit_adjacencies(adj)
    for hop in (1, 2, 3):
        part = orbit_adjacencies(adj, hops=(hop,))
        assert {k for k in part} == {op.name for op in ORBIT_PAIRS if op.hop == hop}
        for name, mat in part.items():
            assert (mat != full[name]).nnz == 0


def test_orbits_ignore_weights_and_isolated_nodes() -> None:
    adj = _random_graph(15, 0.3, 2)
    weighted = adj.multiply(np.arange(1, 16)[None, :] + np.arange(1, 16)[:, None])
    big = sp.block_diag([adj, sp.csr_matrix((3, 3))]).tocsr()
    a, b, c = orbit_adjacencies(adj), orbit_adjacencies(weighted), orbit_adjacencies(big)
    for name in a:
        assert (a[name] != b[name]).nnz == 0
        assert c[name].shape == (18, 18)
        assert (c[name][:15, :15] != a[name]).nnz == 0


def test_orbit_errors() -> None:
    loops = sp.csr_matrix(np.eye(3))
    with pytest.raises(ValueError, match="no self-loops"):
        orbit_adjacencies(loops)
    directed = sp.csr_matrix(np.array([[0, 1], [0, 0]], dtype=float))
    with pytest.raises(ValueError, match="must be symmetric"):
        orbit_adjacencies(directed)
    ok = _random_graph(5, 0.5, 0)
    with pytest.raises(ValueError, match=r"hops must be a non-empty subset of \(1, 2, 3\)"):
        orbit_adjacencies(ok, hops=(4,))
    with pytest.raises(ValueError, match="hop must be >= 1, got 0"):
        orbit_adjacencies(ok, hops=(0,))
    with pytest.raises(ValueError, match="brute force is O"):
        orbit_adjacencies_bruteforce(_random_graph(50, 0.1, 0))
