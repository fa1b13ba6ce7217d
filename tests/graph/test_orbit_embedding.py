"""orbit_embedding (GRADCO completion): determinism, shape, brute-force reference, bench, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from typer.testing import CliRunner

from embedlab.bench import read_records
from embedlab.cli import app
from embedlab.graph import (
    fastrp,
    orbit_adjacencies,
    orbit_adjacencies_bruteforce,
    orbit_embedding,
    run_graph_bench,
)
from embedlab.graph.orbit_embedding import symmetric_orbit_matrices


def _graph(n: int = 36, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((n, n)) < 0.15, 1).astype(float)
    return sp.csr_matrix(upper + upper.T)


def test_shape_and_determinism() -> None:
    adj = _graph()
    a = orbit_embedding(adj, 40, seed=3)
    b = orbit_embedding(adj, 40, seed=3)
    assert a.shape == (36, 40) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, orbit_embedding(adj, 40, seed=4))
    s = orbit_embedding(adj, 24, combine="sum", seed=1)
    assert s.shape == (36, 24)
    np.testing.assert_array_equal(s, orbit_embedding(adj, 24, combine="sum", seed=1))
    assert orbit_embedding(adj, 40, hops=(1,), seed=0).shape == (36, 40)


def test_symmetric_classes_match_bruteforce_and_blocks_are_fastrp() -> None:
    adj = _graph(24, seed=1)
    counted = orbit_adjacencies(adj)
    brute = orbit_adjacencies_bruteforce(adj)
    sym = symmetric_orbit_matrices(counted)
    assert list(sym) == list(symmetric_orbit_matrices(brute))
    assert 0 < len(sym) <= 20 and "o0_o0_h1" in sym
    for name, mat in sym.items():
        assert abs(mat - mat.T).max() == 0  # symmetric
        i, j, h = (int(part[1:]) for part in name.split("_"))
        ref = brute[name] + (brute[f"o{j}_o{i}_h{h}"] if i != j else 0)
        assert abs(mat - ref).max() == 0
    np.testing.assert_array_equal((sym["o0_o0_h1"] > 0).toarray(), adj.toarray() > 0)
    # the concatenation is FastRP of each class with its own seed, dims split evenly
    k = len(sym)
    emb = orbit_embedding(adj, 2 * k + 1, seed=5, orbit_mats=brute)
    np.testing.assert_array_equal(emb, orbit_embedding(adj, 2 * k + 1, seed=5))
    np.testing.assert_allclose(emb[:, :3], fastrp(next(iter(sym.values())), 3, seed=5), atol=1e-6)
    assert not np.allclose(emb, 0)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match=r"adj must have at least one node"):
        orbit_embedding(sp.csr_matrix((0, 0)), 8)
    with pytest.raises(ValueError, match=r"adj must have at least one edge.*empty graph of 5"):
        orbit_embedding(sp.csr_matrix((5, 5)), 8)
    adj = _graph()
    with pytest.raises(ValueError, match=r"dim must be >= the number of non-empty orbit"):
        orbit_embedding(adj, 3)
    with pytest.raises(ValueError, match=r"combine must be one of concat, sum"):
        orbit_embedding(adj, 40, combine="max")
    with pytest.raises(ValueError, match=r"orbit_mats\['o0_o0_h1'\] must have shape \(36, 36\)"):
        orbit_embedding(adj, 40, orbit_mats={"o0_o0_h1": sp.eye(3)})


def test_bench_records_orbits() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    prob = np.where(labels[:, None] == labels[None, :], 0.2, 0.01)
    upper = np.triu(rng.random(prob.shape) < prob, 1).astype(float)
    recs = run_graph_bench(
        sp.csr_matrix(upper + upper.T),
        labels,
        dataset="toy",
        methods=("orbits", "fastrp"),
        dims=(32,),
        n_repeats=2,
        train_ratio=0.3,
    )
    orb = recs[0]
    assert orb.method == "orbits" and orb.params["orbit_hops"] == [1, 2, 3]
    assert orb.memory_bytes == 120 * 32 * 4
    assert orb.metrics["micro_f1"] > 0.7  # three dense blocks: easy
    with pytest.raises(ValueError, match=r"orbit_hops must be 'auto' or a sequence"):
        run_graph_bench(upper + upper.T, labels, dataset="t", methods=("orbits",), orbit_hops=(4,))


def test_cli_bench_graph_orbits(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    blocks = np.repeat(np.arange(2), 30)
    prob = np.where(blocks[:, None] == blocks[None, :], 0.25, 0.02)
    upper = np.triu(rng.random(prob.shape) < prob, 1).astype(float)
    path = tmp_path / "toy.mat"
    scipy.io.savemat(path, {"network": sp.csc_matrix(upper + upper.T), "group": np.eye(2)[blocks]})
    out = tmp_path / "runs.jsonl"
    args = ["bench", "graph", "--data", f"mat:{path}", "--dim", "32", "--repeats", "2"]
    res = CliRunner().invoke(
        app, [*args, "--methods", "orbits", "--orbit-hops", "1", "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    (rec,) = read_records(out)
    assert rec.method == "orbits" and rec.params["orbit_hops"] == [1]
    res = CliRunner().invoke(app, [*args, "--methods", "orbits", "--orbit-hops", "4"])
    assert res.exit_code == 2 and "--orbit-hops must be" in res.output
