"""The graph benchmark suite writes one record per (method, dim, seed)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from embedlab.graph import embed, run_graph_bench, spectral_embedding


def _graph() -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 50)
    prob = np.where(labels[:, None] == labels[None, :], 0.15, 0.01)
    upper = np.triu(rng.random(prob.shape) < prob, 1).astype(float)
    return sp.csr_matrix(upper + upper.T), labels


def test_run_graph_bench_records() -> None:
    adj, labels = _graph()
    seen = []
    recs = run_graph_bench(
        adj,
        labels,
        dataset="toy",
        methods=("fastrp", "randproj", "spectral"),
        dims=(8, 16),
        seeds=(0,),
        n_repeats=2,
        train_ratio=0.3,
        on_record=seen.append,
    )
    assert len(recs) == 6 and seen == recs
    for r in recs:
        assert r.suite == "graph" and r.dataset == "toy" and r.status == "ok"
        assert list(r.metrics) == ["micro_f1", "macro_f1"]  # the report plots the first
        assert r.memory_bytes == 150 * r.params["dim"] * 4
        assert r.timing["embed_s"] >= 0
    fast = [r for r in recs if r.method == "fastrp"]
    assert fast[0].params["weights"] == [1.0, 1.0, 7.81, 45.28]
    assert fast[0].params["beta"] == -0.628
    assert all(r.metrics["micro_f1"] > 0.7 for r in fast)  # measured 0.97+
    assert recs[0].to_json()


def test_spectral_embedding_shape_and_errors() -> None:
    adj, _ = _graph()
    emb = spectral_embedding(adj, 5)
    assert emb.shape == (150, 5) and emb.dtype == np.float32
    with pytest.raises(ValueError, match="dim must be < n_nodes=150"):
        spectral_embedding(adj, 150)
    with pytest.raises(ValueError, match="method must be one of fastrp, orbits, randproj"):
        embed("deepwalk", adj, 4)
    with pytest.raises(ValueError, match="methods must not be empty"):
        run_graph_bench(adj, np.zeros(150), dataset="x", methods=())
