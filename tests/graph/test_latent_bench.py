"""bench graph's latent-graph GCN methods: the suite's record, its splits, its errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from typer.testing import CliRunner

from embedlab.graph import run_graph_bench
from embedlab.graph._latent_bench import latent_node_classification
from embedlab.graph.evaluate import f1_scores, node_classification, node_splits
from embedlab.graph.latent_graph import latent_graph


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _toy() -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    x = rng.random((90, 12)) + 2.0 * np.eye(3)[y].repeat(4, axis=1)
    prob = np.where(y[:, None] == y[None, :], 0.2, 0.02)
    upper = np.triu(rng.random(prob.shape) < prob, 1).astype(float)
    return x, y, sp.csr_matrix(upper + upper.T)


def test_splits_are_those_of_node_classification() -> None:
    _, y, _ = _toy()
    y = y.copy()
    y[:5] = -1  # unlabelled nodes are in no split
    splits = node_splits(y, train_ratio=0.3, n_repeats=3, seed=4)
    assert len(splits) == 3
    for tr, te in splits:
        assert tr.size == round(0.3 * 85) and tr.size + te.size == 85
        assert not set(tr) & set(te) and (y[tr] >= 0).all() and (y[te] >= 0).all()
    again = node_splits(y, train_ratio=0.3, n_repeats=3, seed=4)
    for a, b in zip(splits, again, strict=True):
        assert (a[0] == b[0]).all() and (a[1] == b[1]).all()
    # the logistic-regression path still gives the same numbers through node_splits
    emb = np.eye(3)[np.maximum(y, 0)] + np.random.default_rng(1).normal(0, 0.1, (90, 3))
    assert node_classification(emb, y, train_ratio=0.3, n_repeats=2).micro_f1 > 0.9


def test_scores_its_own_predictions_on_each_split() -> None:
    x, y, adj = _toy()
    kw = {"encoder": "mlp", "k": 4, "epochs": 10, "lr": 0.05, "latent_dim": 4}
    res = latent_node_classification(
        "snowflake_latent", x, adj, y, train_ratio=0.4, n_repeats=2, seed=1, **kw
    )
    # independent recomputation of the same two splits, GCN by GCN
    micro, macro = [], []
    for tr, te in node_splits(y, train_ratio=0.4, n_repeats=2, seed=1):
        n_val = round(0.2 * tr.size)
        split = {"train": tr[n_val:], "val": tr[:n_val], "test": te}
        r = latent_graph(x, y, split, graph="snowflake", adj=adj, seed=1, **kw)  # type: ignore[arg-type]
        assert r.test_predictions.shape == te.shape
        assert np.isclose((r.test_predictions == y[te]).mean(), r.test_accuracy)
        mi, ma = f1_scores(y[te], r.test_predictions)
        micro.append(mi)
        macro.append(ma)
    assert res.micro_f1 == pytest.approx(np.mean(micro))
    assert res.macro_f1 == pytest.approx(np.mean(macro))
    assert res.micro_f1 > 0.6  # three separable classes, chance 0.33


def test_graph_bench_record_and_errors() -> None:
    x, y, adj = _toy()
    recs = run_graph_bench(
        adj, y, dataset="toy", methods=("fastrp", "euclid_latent", "gcn"), dims=(8, 16),
        train_ratio=0.4, n_repeats=1, features=x,
        latent_options={"encoder": "mlp", "epochs": 10, "k": 4, "latent_dim": 4},
    )  # fmt: skip
    assert [r.method for r in recs] == ["fastrp", "fastrp", "euclid_latent", "gcn"]  # one per seed
    assert recs[-1].metrics["micro_f1"] > 0.6  # the given graph joins same-class nodes
    assert recs[-1].params["dim"] == 32  # the GCN's hidden width: it has no latent space
    lat = recs[2]
    assert lat.suite == "graph" and list(lat.metrics) == ["micro_f1", "macro_f1"]
    assert lat.params["dim"] == 4 and lat.memory_bytes == 90 * 4 * 4
    assert "own test predictions" in lat.params["scoring"]
    assert lat.params["latent"]["encoder"] == "mlp"
    with pytest.raises(ValueError, match=r"features must be given for the latent methods"):
        run_graph_bench(adj, y, dataset="toy", methods=("snowflake_latent",))
    multi = np.eye(3, dtype=np.int8)[y]
    with pytest.raises(ValueError, match=r"needs single-label class ids"):
        latent_node_classification("snowflake_latent", x, adj, multi)
    with pytest.raises(ValueError, match=r"method must be one of snowflake_latent"):
        latent_node_classification("fastrp", x, adj, y)


def test_cli_refuses_latent_method_without_features(tmp_path: Path) -> None:
    from scipy.io import savemat

    from embedlab.cli import app

    _, y, adj = _toy()
    path = tmp_path / "toy.mat"
    savemat(path, {"network": adj, "group": np.eye(3)[y]})
    result = CliRunner().invoke(
        app, ["bench", "graph", "--data", f"mat:{path}", "--methods", "fastrp,snowflake_latent"]
    )
    assert result.exit_code != 0
    assert "features must be given for the latent methods" in result.output
