"""Clustering quality of embeddings: k-means with one cluster per class, then NMI and AMI."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from embedlab._validation import check_choice, check_int, check_min_classes
from embedlab.evaluate._inputs import as_embeddings, as_labels

__all__ = ["clustering_metrics"]


def clustering_metrics(
    emb: Any,
    labels: Any,
    *,
    seed: int = 0,
    metric: str = "cos",
    n_init: int = 3,
) -> dict[str, float]:
    """NMI and AMI between the classes and a k-means clustering of the embeddings.

    k-means (scikit-learn, ``n_clusters`` = number of classes) runs on the embeddings,
    L2-normalised first when ``metric="cos"`` (spherical-style clustering, as the
    retrieval metrics use cosine); NMI and AMI are scikit-learn's
    ``normalized_mutual_info_score`` and ``adjusted_mutual_info_score``.

    Args:
        emb: ``(n, dim)`` embeddings (numpy or torch).
        labels: ``(n,)`` integer class labels with at least 2 classes.
        seed: k-means initialisation seed.
        metric: ``"cos"`` (normalise rows), ``"ip"`` or ``"l2"`` (raw embeddings).
        n_init: k-means restarts; the best inertia wins.

    Returns:
        ``{"nmi": ..., "ami": ...}``.

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> clustering_metrics(x, np.array([0, 0, 1, 1]))["nmi"]
        1.0
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

    check_choice("metric", metric, ("cos", "ip", "l2"))
    seed = check_int("seed", seed, min_value=0)
    n_init = check_int("n_init", n_init, min_value=1)
    x = as_embeddings("emb", emb)
    y = as_labels("labels", labels, x.shape[0], "emb")
    n_classes = check_min_classes("labels", y)
    if x.shape[0] < n_classes:
        raise ValueError(f"emb must have at least n_classes={n_classes} rows, got {x.shape[0]}")
    if metric == "cos":
        x = torch.nn.functional.normalize(x, dim=1)
    arr = x.numpy().astype(np.float64)
    pred = KMeans(n_clusters=n_classes, n_init=n_init, random_state=seed).fit_predict(arr)
    return {
        "nmi": float(normalized_mutual_info_score(y, pred)),
        "ami": float(adjusted_mutual_info_score(y, pred)),
    }
