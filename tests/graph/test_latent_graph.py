"""latent_graph: runs for every graph kind, deterministic, learns a separable toy task; errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from embedlab.graph import load_planetoid
from embedlab.graph.latent_graph import latent_graph, planetoid_split


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: on a busy machine several threads spin and cost far more CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _toy() -> tuple[np.ndarray, np.ndarray, sp.csr_matrix, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    x = rng.random((90, 12)) + 2.0 * np.eye(3)[y].repeat(4, axis=1)
    prob = np.where(y[:, None] == y[None, :], 0.2, 0.02)
    upper = np.triu(rng.random(prob.shape) < prob, 1).astype(float)
    perm = rng.permutation(90)
    split = {"train": perm[:30], "val": perm[30:50], "test": perm[50:]}
    return x, y, sp.csr_matrix(upper + upper.T), split


@pytest.mark.parametrize(
    ("graph", "encoder"), [("given", "mlp"), ("euclidean", "mlp"), ("snowflake", "gcn")]
)
def test_runs_and_is_deterministic(graph: str, encoder: str) -> None:
    x, y, adj, split = _toy()
    kw = {"graph": graph, "adj": adj, "encoder": encoder, "k": 4, "epochs": 20, "lr": 0.05}
    a = latent_graph(x, y, split, **kw)  # type: ignore[arg-type]
    b = latent_graph(x, y, split, **kw)  # type: ignore[arg-type]
    assert a == b
    assert a.graph == graph and a.encoder == ("given" if graph == "given" else encoder)
    assert 1 <= a.best_epoch <= 20 and 0.0 <= a.edge_homophily <= 1.0
    assert a.test_accuracy > 0.6  # three well-separated classes (chance 0.33)


def test_bad_input() -> None:
    x, y, _adj, split = _toy()
    with pytest.raises(ValueError, match=r"graph must be one of euclidean, given, snowflake"):
        latent_graph(x, y, split, graph="hyperbolic")
    with pytest.raises(ValueError, match=r"adj must be given for graph='given'"):
        latent_graph(x, y, split, graph="given")
    with pytest.raises(ValueError, match=r"adj must be given for graph='euclidean', encoder='gcn'"):
        latent_graph(x, y, split, graph="euclidean", encoder="gcn")
    with pytest.raises(ValueError, match=r"features must be a finite"):
        latent_graph(np.full_like(x, np.nan), y, split)
    with pytest.raises(ValueError, match=r"split must hold non-empty"):
        latent_graph(x, y, {"train": split["train"], "val": split["val"]})
    with pytest.raises(ValueError, match=r"split\['test'\] must index labelled rows"):
        latent_graph(x, y, {**split, "test": np.array([90])})
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        latent_graph(x, y, split, dropout=1.0)


def test_planetoid_split_on_cora(require_shared: Callable[[str], Path]) -> None:
    folder = require_shared("planetoid")
    split = planetoid_split(folder)
    assert [len(split[p]) for p in ("train", "val", "test")] == [140, 500, 1000]
    labels = load_planetoid(folder).labels
    assert labels is not None and (labels[np.concatenate(list(split.values()))] >= 0).all()
    with pytest.raises(FileNotFoundError, match=r"ind.nope.y"):
        planetoid_split(folder, "nope")
