"""Latent-graph GCNs (``snowflake_latent``, ``euclid_latent``; ``gcn`` on the given graph as
their reference) scored like the graph suite.

A latent-graph GCN (:func:`~embedlab.graph.latent_graph.latent_graph`) is a semi-supervised
node classifier, not an unsupervised embedding, so it cannot go through the suite's
"embed, then logistic regression" path without leaking labels. It is scored on the suite's
own splits instead: for each of the ``n_repeats`` seeded ``(train, test)`` splits of
:func:`~embedlab.graph.evaluate.node_splits` (the same nodes the logistic regression of
``fastrp``/``orbits`` sees), the GCN trains on that split's training nodes only, a
``val_fraction`` of them held out to pick the epoch, and its own predictions on the split's
test nodes give Micro/Macro-F1. The model sees the node features and the graph of all
nodes (transductive, as GCNs are), never a test label.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embedlab._validation import check_fraction, check_int
from embedlab.graph.evaluate import NodeClassificationResult, f1_scores, node_splits
from embedlab.graph.latent_graph import latent_graph

__all__ = ["LATENT_METHODS", "latent_node_classification"]

LATENT_METHODS = {"snowflake_latent": "snowflake", "euclid_latent": "euclidean", "gcn": "given"}
"""Suite method name -> ``latent_graph``'s ``graph``."""


def latent_node_classification(
    method: str,
    features: Any,
    adj: Any,
    labels: Any,
    *,
    train_ratio: float = 0.1,
    n_repeats: int = 5,
    seed: int = 0,
    val_fraction: float = 0.2,
    **latent_kwargs: Any,
) -> NodeClassificationResult:
    """Micro/Macro-F1 of a latent-graph GCN's predictions over the suite's seeded splits.

    Args:
        method: ``snowflake_latent``, ``euclid_latent`` or ``gcn`` (the plain two-layer GCN on
            the given graph, Kipf & Welling).
        features: ``(n, f)`` node features (dense or scipy sparse).
        adj: ``(n, n)`` given adjacency (the ``gcn`` encoder's graph).
        labels: ``(n,)`` class ids (``-1`` = unlabelled); multi-label data is refused.
        train_ratio, n_repeats, seed: the splits, as in
            :func:`~embedlab.graph.evaluate.node_classification`; ``seed`` also seeds the GCN.
        val_fraction: share of each split's training nodes held out to choose the epoch.
        **latent_kwargs: passed to :func:`~embedlab.graph.latent_graph.latent_graph`
            (``encoder``, ``k``, ``latent_dim``, ``epochs``, ...).
    """
    if method not in LATENT_METHODS:
        raise ValueError(f"method must be one of {', '.join(LATENT_METHODS)}, got {method!r}")
    if features is None:
        raise ValueError(
            f"method {method!r} needs node features (e.g. planetoid data); this graph has none"
        )
    y = np.asarray(labels)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(
            f"method {method!r} needs single-label class ids (n,), got labels of shape {y.shape}"
        )
    train_ratio = check_fraction("train_ratio", train_ratio)
    n_repeats = check_int("n_repeats", n_repeats, min_value=1)
    seed = check_int("seed", seed, min_value=0)
    val_fraction = check_fraction("val_fraction", val_fraction)
    classes = np.unique(y[y >= 0])
    micro: list[float] = []
    macro: list[float] = []
    for tr, te in node_splits(y, train_ratio=train_ratio, n_repeats=n_repeats, seed=seed):
        n_val = max(1, round(val_fraction * tr.size))
        if tr.size - n_val < 1:
            raise ValueError(
                f"train_ratio={train_ratio} gives {tr.size} training nodes: too few to hold "
                f"out val_fraction={val_fraction} and keep one to train on"
            )
        split = {"train": tr[n_val:], "val": tr[:n_val], "test": te}  # tr is shuffled
        res = latent_graph(
            features, y, split, graph=LATENT_METHODS[method], adj=adj, seed=seed, **latent_kwargs
        )
        mi, ma = f1_scores(y[te], res.test_predictions, classes=classes)
        micro.append(mi)
        macro.append(ma)
    return NodeClassificationResult(
        micro_f1=float(np.mean(micro)),
        macro_f1=float(np.mean(macro)),
        micro_f1_std=float(np.std(micro)),
        macro_f1_std=float(np.std(macro)),
        n_repeats=n_repeats,
        train_ratio=train_ratio,
    )
