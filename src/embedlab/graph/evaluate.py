"""Node classification on embeddings: one-vs-rest logistic regression, Micro/Macro-F1.

The protocol of DeepWalk (Perozzi et al. 2014) and FastRP: a random ``train_ratio`` of the
nodes trains one logistic regression per label; on the rest,

- multi-label (``labels`` is an ``(n, n_labels)`` indicator matrix): each node gets the
  ``k`` labels with the highest scores, ``k`` = its true number of labels;
- single-label (``labels`` is ``(n,)`` class ids): each node gets the arg-max label.

Micro-F1 and Macro-F1 are averaged over ``n_repeats`` seeded splits.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.multiclass import OneVsRestClassifier

from embedlab._validation import (
    check_finite,
    check_fraction,
    check_int,
    check_positive_float,
    check_same_length,
)

__all__ = ["NodeClassificationResult", "f1_scores", "node_classification", "node_splits"]


@dataclass(frozen=True)
class NodeClassificationResult:
    """Mean and standard deviation of the F1 scores over the repeats."""

    micro_f1: float
    macro_f1: float
    micro_f1_std: float
    macro_f1_std: float
    n_repeats: int
    train_ratio: float


def _top_k(scores: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Indicator of the ``k[i]`` highest scores of each row: ``(n, n_labels)`` int8."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :], axis=1)
    out: np.ndarray = (ranks < k[:, None]).astype(np.int8)
    return out


def node_splits(
    labels: np.ndarray, *, train_ratio: float, n_repeats: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``n_repeats`` seeded ``(train, test)`` node splits of :func:`node_classification`.

    ``labels``: ``(n,)`` class ids (``-1`` = unlabelled, in neither part) or an
    ``(n, n_labels)`` indicator matrix (every node usable). Each split shuffles the usable
    nodes and puts the first ``round(train_ratio * n_usable)`` in ``train``.
    """
    y = np.asarray(labels)
    usable = np.flatnonzero(y >= 0) if y.ndim == 1 else np.arange(y.shape[0])
    n_train = round(train_ratio * usable.size)
    if n_train < 2 or usable.size - n_train < 1:
        raise ValueError(
            f"train_ratio={train_ratio} leaves {n_train} training and "
            f"{usable.size - n_train} test nodes out of {usable.size}; need >= 2 and >= 1"
        )
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_repeats):
        perm = usable[rng.permutation(usable.size)]
        out.append((perm[:n_train], perm[n_train:]))
    return out


def f1_scores(true: Any, pred: Any, *, classes: Any = None) -> tuple[float, float]:
    """``(micro_f1, macro_f1)`` of predictions: class ids (averaged over ``classes``, default
    the classes present) or ``(n, n_labels)`` 0/1 indicator matrices."""
    labels = None if classes is None else np.asarray(classes)
    return (
        float(f1_score(true, pred, average="micro", labels=labels, zero_division=0)),
        float(f1_score(true, pred, average="macro", labels=labels, zero_division=0)),
    )


def node_classification(
    embeddings: Any,
    labels: Any,
    *,
    train_ratio: float = 0.1,
    n_repeats: int = 5,
    seed: int = 0,
    C: float = 1.0,
) -> NodeClassificationResult:
    """Micro/Macro-F1 of one-vs-rest logistic regression on node embeddings.

    Args:
        embeddings: ``(n, dim)`` array (numpy or torch).
        labels: ``(n,)`` int class ids (``-1`` = unlabelled, excluded), or ``(n, n_labels)``
            0/1 indicator matrix for multi-label data.
        train_ratio: fraction of the (labelled) nodes used for training, in (0, 1).
        n_repeats: number of random splits to average over.
        seed: seed of the splits; the same seed gives the same splits.
        C: inverse regularisation strength of the logistic regression.

    Returns:
        :class:`NodeClassificationResult` with the means and standard deviations.
    """
    x = np.asarray(
        embeddings.detach().cpu().numpy() if hasattr(embeddings, "detach") else embeddings
    )
    x = x.astype(np.float64, copy=False)
    y = np.asarray(labels.todense() if hasattr(labels, "todense") else labels)
    if x.ndim != 2:
        raise ValueError(f"embeddings must have shape (n, dim), got {x.shape}")
    check_same_length("embeddings rows", np.empty(x.shape[0]), "labels rows", np.empty(y.shape[0]))
    check_finite("embeddings", x)
    train_ratio = check_fraction("train_ratio", train_ratio)
    n_repeats = check_int("n_repeats", n_repeats, min_value=1)
    seed = check_int("seed", seed, min_value=0)
    C = check_positive_float("C", C)

    multilabel = y.ndim == 2
    if multilabel:
        y = (y != 0).astype(np.int8)
    elif y.ndim == 1:
        y = y.astype(np.int64)
    else:
        raise ValueError(f"labels must have shape (n,) or (n, n_labels), got {y.shape}")
    micro: list[float] = []
    macro: list[float] = []
    for tr, te in node_splits(y, train_ratio=train_ratio, n_repeats=n_repeats, seed=seed):
        clf = OneVsRestClassifier(LogisticRegression(solver="liblinear", C=C))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # labels absent from a small training split
            clf.fit(x[tr], y[tr])
            scores = np.asarray(clf.decision_function(x[te]))
        if multilabel:
            # A label without a positive training example gets sklearn's constant predictor,
            # whose score 0 would beat every real label's negative score in the top-k: such a
            # label is never predicted (it had nothing to learn from).
            seen = np.asarray(y[tr].any(axis=0), dtype=bool)
            scores = np.where(seen[None, :], scores, -np.inf)
            pred = _top_k(scores, y[te].sum(axis=1))
            mi, ma = f1_scores(y[te], pred)
        else:
            if scores.ndim == 1:  # two classes: one column of scores
                scores = np.stack([-scores, scores], axis=1)
            pred = np.asarray(clf.classes_)[scores.argmax(axis=1)]
            mi, ma = f1_scores(y[te], pred, classes=np.unique(y[y >= 0]))
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
