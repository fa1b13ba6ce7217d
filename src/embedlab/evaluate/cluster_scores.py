"""Scores of a clustering against the true classes: NMI, ARI and ACC (Hungarian matching)."""

from __future__ import annotations

from typing import Any

import numpy as np

from embedlab._validation import check_labels_for, check_same_rows

__all__ = ["cluster_accuracy", "cluster_scores"]


def _label_vectors(labels_true: Any, labels_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both label vectors as int64 numpy ``(n,)``, checked to pair up."""
    arrays = []
    for name, value in (("labels_true", labels_true), ("labels_pred", labels_pred)):
        arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if arr.ndim != 1:
            raise ValueError(f"{name} must have shape (n,), got {arr.shape}")
        arrays.append(arr)
    true, pred = arrays
    check_same_rows("labels_true", true.shape[0], "labels_pred", pred.shape[0])
    if true.shape[0] == 0:
        raise ValueError("labels_true must not be empty, got 0 rows")
    check_labels_for("labels_true", true, true.shape[0], "labels_true")
    check_labels_for("labels_pred", pred, pred.shape[0], "labels_true")
    return true.astype(np.int64, copy=False), pred.astype(np.int64, copy=False)


def _contingency(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``(n_pred_clusters, n_classes)`` counts of samples per (cluster, class)."""
    _, t = np.unique(true, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    table = np.zeros((int(p.max()) + 1, int(t.max()) + 1), dtype=np.int64)
    np.add.at(table, (p, t), 1)
    return table


def cluster_accuracy(labels_true: Any, labels_pred: Any) -> float:
    """Clustering accuracy: the share of samples right under the best one-to-one map of
    clusters to classes (the Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``).

    ``ACC = max_m (1/n) Σ_i 1[y_i = m(c_i)]`` over injective maps ``m``; with more clusters
    than classes the extra clusters count as wrong (the convention of DEC / DEPICT).

    Args:
        labels_true: ``(n,)`` integer class labels.
        labels_pred: ``(n,)`` integer cluster ids (any values; only the partition counts).

    Example:
        >>> cluster_accuracy([0, 0, 1, 1, 2], [5, 5, 3, 3, 3])
        0.8
    """
    from scipy.optimize import linear_sum_assignment

    true, pred = _label_vectors(labels_true, labels_pred)
    table = _contingency(true, pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / true.shape[0])


def cluster_scores(labels_true: Any, labels_pred: Any) -> dict[str, float]:
    """NMI, ARI and ACC of a clustering against the true classes.

    NMI is scikit-learn's ``normalized_mutual_info_score`` (arithmetic mean of the
    entropies), ARI its ``adjusted_rand_score``, ACC :func:`cluster_accuracy`. To cluster
    embeddings with k-means first, see :func:`~embedlab.evaluate.clustering_metrics`.

    Args:
        labels_true: ``(n,)`` integer class labels.
        labels_pred: ``(n,)`` integer cluster ids.

    Returns:
        ``{"nmi": ..., "ari": ..., "acc": ...}``.

    Example:
        >>> cluster_scores([0, 0, 1, 1], [1, 1, 0, 0])
        {'nmi': 1.0, 'ari': 1.0, 'acc': 1.0}
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    true, pred = _label_vectors(labels_true, labels_pred)
    return {
        "nmi": float(normalized_mutual_info_score(true, pred)),
        "ari": float(adjusted_rand_score(true, pred)),
        "acc": cluster_accuracy(true, pred),
    }
