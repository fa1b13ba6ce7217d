"""Latent-graph inference: a kNN graph from a learned (snowflake) metric feeding a small GCN.

Borde & Kratsios (ICLR 2024) infer the graph of a GNN from latent positions under a neural
snowflake metric. Our small version, trained end to end on a node-classification task:

1. an encoder maps the node features to latent positions ``z`` (``latent_dim``): an MLP
   (``encoder="mlp"``, no graph needed) or, as DGM does on citation graphs, a GCN layer on the
   given graph followed by a linear layer (``encoder="gcn"``);
2. every epoch each node takes its ``k`` nearest neighbours in the latent metric (indices
   without gradient; under a snowflake ``f(|w o (z_i - z_j)|)`` they are the neighbours of the
   weighted Euclidean distance, since ``f`` is increasing);
3. the edges get weights ``exp(-d_ij / tau)`` (learned ``tau``; a self-loop of weight 1),
   normalised per row: the gradient reaches the encoder and the metric through these weights;
4. a two-layer GCN on the node features with that graph gives the class logits.

``graph="given"`` is the plain two-layer GCN of Kipf & Welling on the given graph (symmetric
normalisation with self-loops), the reference. ``graph="euclidean"`` uses ``d = |z_i - z_j|``,
``graph="snowflake"`` a :class:`~embedlab.losses.NeuralSnowflake`. The test accuracy is read
at the epoch of the best validation accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from embedlab._validation import check_adjacency, check_choice, check_int, check_positive_float
from embedlab.graph._planetoid import read_test_index, restricted_load
from embedlab.losses.distances import LpDistance
from embedlab.losses.snowflake import NeuralSnowflake
from embedlab.losses.triplet import TripletLoss

__all__ = ["LATENT_GRAPHS", "LatentGraphResult", "latent_graph", "planetoid_split"]

LATENT_GRAPHS = ("given", "euclidean", "snowflake")


@dataclass(frozen=True)
class LatentGraphResult:
    """Outcome of :func:`latent_graph`.

    Attributes:
        test_accuracy: accuracy on ``test_idx`` at the best validation epoch.
        val_accuracy: the best validation accuracy.
        best_epoch: that epoch (1-based).
        graph: ``given``, ``euclidean`` or ``snowflake``.
        encoder: ``mlp`` or ``gcn`` (``given`` for the plain GCN).
        edge_homophily: fraction of inferred edges (self-loops excluded) joining nodes of the
            same class at the best epoch (of the given graph for ``given``).
        test_predictions: ``(len(test_idx),)`` predicted class ids of the test rows at that
            epoch (in the order of ``split["test"]``; not part of ``==``).
    """

    test_accuracy: float
    val_accuracy: float
    best_epoch: int
    graph: str
    encoder: str
    edge_homophily: float
    test_predictions: np.ndarray = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64), compare=False
    )


def planetoid_split(folder: str | Path, name: str = "cora") -> dict[str, np.ndarray]:
    """The public Planetoid split of the GCN paper: ``{"train", "val", "test"}`` row indices.

    Train = the ``len(ind.<name>.y)`` first rows, validation = the next 500, test = the rows of
    ``ind.<name>.test.index`` (sorted, as :func:`~embedlab.graph.load_planetoid` orders them).
    """
    folder = Path(folder)
    y_file = folder / f"ind.{name}.y"
    if not y_file.is_file():
        raise FileNotFoundError(f"Planetoid file does not exist: {y_file}")
    y = restricted_load(y_file.read_bytes(), where=str(y_file))
    n_train = int(np.asarray(y).shape[0])
    test = np.sort(read_test_index(folder / f"ind.{name}.test.index"))
    return {
        "train": np.arange(n_train),
        "val": np.arange(n_train, n_train + 500),
        "test": test,
    }


class _GCNLayer(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.lin = nn.Linear(n_in, n_out)

    def forward(
        self, h: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, w: torch.Tensor
    ) -> torch.Tensor:
        msg = self.lin(h)
        return torch.zeros_like(msg).index_add_(0, rows, w[:, None] * msg[cols])


class _LatentGCN(nn.Module):
    """Encoder (latent positions) + metric + GCN; ``forward`` returns logits and the edges."""

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        *,
        graph: str,
        hidden: int,
        latent_dim: int,
        k: int,
        dropout: float,
        given: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
    ) -> None:
        super().__init__()
        self.graph, self.k, self.dropout, self.given = graph, k, dropout, given
        self.enc1 = _GCNLayer(n_features, hidden)
        self.enc2 = nn.Linear(hidden, latent_dim)
        self.snowflake = NeuralSnowflake(latent_dim) if graph == "snowflake" else None
        self.log_tau = nn.Parameter(torch.zeros(()))
        self.last_z: torch.Tensor | None = None
        self.gcn1 = _GCNLayer(n_features, hidden)
        self.gcn2 = _GCNLayer(hidden, n_classes)

    def edges(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Row-normalised kNN edges ``(rows, cols, weights)`` with self-loops."""
        h = F.dropout(x, self.dropout, self.training)
        h = self.enc1.lin(h) if self.given is None else self.enc1(h, *self.given)
        z = self.enc2(F.relu(h))
        self.last_z = z
        zs = z if self.snowflake is None else self.snowflake.scaled(z)
        n = z.shape[0]
        with torch.no_grad():
            d_rank = torch.cdist(zs, zs)
            d_rank.fill_diagonal_(float("inf"))
            nbr = d_rank.topk(min(self.k, n - 1), largest=False).indices
        rows = torch.arange(n).repeat_interleave(nbr.shape[1])
        cols = nbr.reshape(-1)
        t = torch.linalg.vector_norm(zs[rows] - zs[cols], dim=-1)
        d = t if self.snowflake is None else self.snowflake.transform(t)
        w = torch.exp(-d / torch.exp(self.log_tau))
        loops = torch.arange(n)
        rows, cols = torch.cat([rows, loops]), torch.cat([cols, loops])
        w = torch.cat([w, torch.ones(n, dtype=w.dtype)])
        deg = torch.zeros(n, dtype=w.dtype).index_add_(0, rows, w)
        return rows, cols, w / deg[rows]

    def forward(
        self, x: torch.Tensor, fixed: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        rows, cols, w = self.edges(x) if fixed is None else fixed
        h = F.dropout(x, self.dropout, self.training)
        h = F.relu(self.gcn1(h, rows, cols, w))
        h = F.dropout(h, self.dropout, self.training)
        return self.gcn2(h, rows, cols, w), (rows, cols, w)


def _given_edges(adj: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``D^-1/2 (A + I) D^-1/2`` as edge lists."""
    a = sp.coo_matrix(adj + sp.eye(adj.shape[0]))
    deg = np.asarray(a.sum(axis=1)).reshape(-1)
    w = a.data / np.sqrt(deg[a.row] * deg[a.col])
    return (
        torch.from_numpy(a.row.astype(np.int64)),
        torch.from_numpy(a.col.astype(np.int64)),
        torch.from_numpy(w.astype(np.float32)),
    )


def _homophily(rows: torch.Tensor, cols: torch.Tensor, y: torch.Tensor) -> float:
    keep = rows != cols
    return float((y[rows[keep]] == y[cols[keep]]).float().mean())


def latent_graph(
    features: Any,
    labels: Any,
    split: dict[str, np.ndarray],
    *,
    graph: str = "snowflake",
    adj: Any = None,
    encoder: str = "mlp",
    k: int = 10,
    latent_dim: int = 16,
    hidden: int = 32,
    epochs: int = 200,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    dropout: float = 0.5,
    metric_weight: float = 0.0,
    seed: int = 0,
) -> LatentGraphResult:
    """Train a GCN on a latent kNN graph (or the given one) and report its test accuracy.

    Args:
        features: ``(n, f)`` node features (dense or scipy sparse); rows are L1-normalised.
        labels: ``(n,)`` class ids (``-1`` = unlabelled, never in the split).
        split: ``{"train", "val", "test"}`` row indices (see :func:`planetoid_split`).
        graph: ``given`` (needs ``adj``), ``euclidean`` or ``snowflake``.
        adj: ``(n, n)`` given adjacency, for ``graph="given"`` and ``encoder="gcn"``.
        encoder: ``mlp`` (latent positions from the features alone) or ``gcn`` (one GCN layer
            on ``adj`` first); ignored for ``graph="given"``.
        k: neighbours per node of the latent graph.
        latent_dim: dimension of the latent positions.
        hidden: hidden units of the encoder and of the GCN.
        epochs, lr, weight_decay, dropout: Adam training (full batch).
        metric_weight: weight of an extra triplet loss (batch-hard, margin 0.2) on the latent
            positions of the training nodes under the same metric (the snowflake, or the
            Euclidean distance); ``0`` (default) trains the metric through the GCN alone.
        seed: torch seed of the initialisation and the dropout.
    """
    graph = check_choice("graph", graph, LATENT_GRAPHS)
    encoder = check_choice("encoder", encoder, ("gcn", "mlp"))
    k = check_int("k", k, min_value=1)
    latent_dim = check_int("latent_dim", latent_dim, min_value=1)
    hidden = check_int("hidden", hidden, min_value=1)
    epochs = check_int("epochs", epochs, min_value=1)
    lr = check_positive_float("lr", lr)
    weight_decay = check_positive_float("weight_decay", weight_decay, strict=False)
    dropout = check_positive_float("dropout", dropout, strict=False)
    if dropout >= 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    metric_weight = check_positive_float("metric_weight", metric_weight, strict=False)
    seed = check_int("seed", seed, min_value=0)
    x_np = features.toarray() if sp.issparse(features) else np.asarray(features, dtype=np.float64)
    if x_np.ndim != 2 or not np.isfinite(x_np).all():
        raise ValueError(f"features must be a finite (n, f) matrix, got shape {x_np.shape}")
    n = x_np.shape[0]
    y_np = np.asarray(labels)
    if y_np.shape != (n,) or y_np.dtype.kind not in "iu":
        raise ValueError(f"labels must be ({n},) integer class ids, got {y_np.shape} {y_np.dtype}")
    for part in ("train", "val", "test"):
        if part not in split or len(split[part]) == 0:
            raise ValueError(
                f"split must hold non-empty 'train', 'val' and 'test', missing {part!r}"
            )
        idx = np.asarray(split[part])
        if idx.min() < 0 or idx.max() >= n or (y_np[idx] < 0).any():
            raise ValueError(f"split[{part!r}] must index labelled rows in [0, {n})")
    sums = np.abs(x_np).sum(axis=1, keepdims=True)
    x = torch.from_numpy((x_np / np.where(sums > 0, sums, 1.0)).astype(np.float32))
    y = torch.from_numpy(y_np.astype(np.int64))
    fixed = given = None
    if graph == "given" or encoder == "gcn":
        if adj is None:
            raise ValueError(f"adj must be given for graph={graph!r}, encoder={encoder!r}")
        mat = check_adjacency("adj", adj)
        if mat.shape[0] != n:
            raise ValueError(f"adj must be ({n}, {n}) like the features, got {mat.shape}")
        given = _given_edges(mat)
        fixed = given if graph == "given" else None
    torch.manual_seed(seed)
    n_classes = int(y_np.max()) + 1
    model = _LatentGCN(
        x.shape[1],
        n_classes,
        graph=graph,
        hidden=hidden,
        latent_dim=latent_dim,
        k=k,
        dropout=dropout,
        given=given if graph != "given" and encoder == "gcn" else None,
    )
    metric_loss = None
    if metric_weight > 0 and graph != "given":
        dist = model.snowflake or LpDistance(power=1, normalize_embeddings=False)
        metric_loss = TripletLoss(margin=0.2, distance=dist, miner="batch_hard")
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    tr, va, te = (
        torch.from_numpy(np.asarray(split[p], dtype=np.int64)) for p in ("train", "val", "test")
    )
    best = (-1.0, 0.0, 0, 0.0)
    best_pred = np.zeros(0, dtype=np.int64)
    for epoch in range(1, epochs + 1):
        model.train()
        opt.zero_grad()
        logits, _ = model(x, fixed)
        loss = F.cross_entropy(logits[tr], y[tr])
        if metric_loss is not None and model.last_z is not None:
            loss = loss + metric_weight * metric_loss(model.last_z[tr], y[tr])
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        model.eval()
        with torch.no_grad():
            logits, (rows, cols, _) = model(x, fixed)
            pred = logits.argmax(1)
            val = float((pred[va] == y[va]).float().mean())
            if val > best[0]:
                test = float((pred[te] == y[te]).float().mean())
                best = (val, test, epoch, _homophily(rows, cols, y))
                best_pred = pred[te].numpy().astype(np.int64)
    return LatentGraphResult(
        test_accuracy=best[1],
        val_accuracy=best[0],
        best_epoch=best[2],
        graph=graph,
        encoder="given" if graph == "given" else encoder,
        edge_homophily=best[3],
        test_predictions=best_pred,
    )
