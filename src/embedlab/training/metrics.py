"""Binary-classification metrics for CTR: exact ROC AUC and log loss, in numpy."""

from __future__ import annotations

from typing import Any

import numpy as np

from embedlab._validation import (
    check_binary_labels,
    check_finite,
    check_nonempty,
    check_positive_float,
    check_same_length,
)

__all__ = ["auc_score", "gauc_score", "log_loss"]


def _as_1d(name: str, values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _checked(labels: Any, scores: Any, scores_name: str) -> tuple[np.ndarray, np.ndarray]:
    y = _as_1d("labels", labels)
    s = _as_1d(scores_name, scores)
    check_same_length("labels", y, scores_name, s)
    check_nonempty("labels", y.size)
    check_finite("labels", y)
    check_finite(scores_name, s)
    return y, s


def auc_score(labels: Any, scores: Any) -> float:
    """Exact area under the ROC curve, ties counted as half (average ranks), in O(n log n).

    ``AUC = (sum of the ranks of the positives - n_pos (n_pos + 1) / 2) / (n_pos n_neg)``
    with tied scores given their average rank (Mann-Whitney U).

    Args:
        labels: ``(n,)`` 0/1 labels (numpy array, list or torch tensor).
        scores: ``(n,)`` finite scores; any monotone transform gives the same AUC.

    Raises:
        ValueError: empty input, shapes that differ, non-finite scores, labels other
            than 0/1, or labels of only one class (AUC is undefined).

    Example:
        >>> auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
        0.75
    """
    y, s = _checked(labels, scores, "scores")
    check_binary_labels("labels", y, both_classes=True)
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    n = sorted_s.size
    # start of each run of equal scores, and its length
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    lengths = np.diff(np.r_[starts, n])
    # average 1-based rank of each run: start + (length + 1) / 2
    run_ranks = starts + (lengths + 1) / 2.0
    ranks = np.repeat(run_ranks, lengths)
    pos = y[order] == 1
    n_pos = int(np.count_nonzero(pos))
    n_neg = n - n_pos
    rank_sum = float(ranks[pos].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def gauc_score(labels: Any, scores: Any, groups: Any) -> float:
    """Group AUC: the AUC of each group, averaged with the group's number of impressions as weight.

    ``gAUC = sum_g n_g AUC_g / sum_g n_g`` over the groups (e.g. users) that hold
    both classes; a group with a single class has no AUC and is skipped, as in
    the DIN paper (Zhou et al., KDD 2018, eq. 10). It removes the ranking
    *between* users, which a CTR model is not asked for. Ties count as half,
    as in :func:`auc_score`. One sort for all groups, O(n log n).

    Args:
        labels: ``(n,)`` 0/1 labels.
        scores: ``(n,)`` finite scores.
        groups: ``(n,)`` group of each row (any values numpy can sort).

    Raises:
        ValueError: empty input, shapes that differ, non-finite scores, labels other
            than 0/1, or no group with both classes.

    Example:
        >>> gauc_score([0, 1, 0, 1, 1], [0.1, 0.9, 0.8, 0.2, 0.5], [7, 7, 8, 8, 9])
        0.5
    """
    y, s = _checked(labels, scores, "scores")
    check_binary_labels("labels", y)
    g = np.asarray(groups.detach().cpu().numpy() if hasattr(groups, "detach") else groups)
    if g.ndim != 1:
        raise ValueError(f"groups must be one-dimensional, got shape {g.shape}")
    check_same_length("labels", y, "groups", g)
    _, gid = np.unique(g, return_inverse=True)
    gid = gid.reshape(-1)
    n = y.size
    order = np.lexsort((s, gid))  # by group, then score
    sg, ss = gid[order], s[order]
    # runs of equal (group, score); their average 1-based rank inside the group
    new_run = np.r_[True, (sg[1:] != sg[:-1]) | (ss[1:] != ss[:-1])]
    starts = np.flatnonzero(new_run)
    lengths = np.diff(np.r_[starts, n])
    group_start = np.flatnonzero(np.r_[True, sg[1:] != sg[:-1]])
    first_of_group = np.repeat(group_start, np.diff(np.r_[group_start, n]))
    ranks = np.repeat(starts + (lengths + 1) / 2.0, lengths) - first_of_group
    pos = y[order] == 1
    n_groups = int(gid.max()) + 1
    size = np.bincount(sg, minlength=n_groups).astype(np.float64)
    n_pos = np.bincount(sg, weights=pos, minlength=n_groups)
    rank_sum = np.bincount(sg, weights=ranks * pos, minlength=n_groups)
    n_neg = size - n_pos
    both = (n_pos > 0) & (n_neg > 0)
    if not both.any():
        raise ValueError(
            f"gAUC needs at least one group with both classes, got none among {n_groups} groups"
        )
    p, q = n_pos[both], n_neg[both]
    auc = (rank_sum[both] - p * (p + 1) / 2.0) / (p * q)
    return float(np.sum(size[both] * auc) / np.sum(size[both]))


def log_loss(labels: Any, probs: Any, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy ``-mean(y log p + (1 - y) log(1 - p))``.

    Args:
        labels: ``(n,)`` 0/1 labels.
        probs: ``(n,)`` predicted click probabilities, clipped to ``[eps, 1 - eps]``.
        eps: clipping bound, in (0, 0.5).

    Raises:
        ValueError: empty input, shapes that differ, non-finite values, labels
            other than 0/1, or probabilities outside [0, 1].

    Example:
        >>> round(log_loss([0, 1], [0.2, 0.9]), 6)
        0.164252
    """
    eps = check_positive_float("eps", eps)
    if eps >= 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps}")
    y, p = _checked(labels, probs, "probs")
    check_binary_labels("labels", y)
    outside = (p < 0) | (p > 1)
    if outside.any():
        raise ValueError(f"probs must be in [0, 1], got {p[outside][0].item()!r}")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))
