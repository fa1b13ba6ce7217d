"""gauc_score against a per-group loop over scikit-learn's roc_auc_score."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from embedlab.training import auc_score, gauc_score


def _naive_gauc(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> float:
    num = den = 0.0
    for g in np.unique(groups):
        m = groups == g
        if len(np.unique(labels[m])) < 2:
            continue  # one class: no AUC
        num += m.sum() * roc_auc_score(labels[m], scores[m])
        den += m.sum()
    return num / den


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_levels", [4, None])
def test_gauc_matches_a_per_group_loop(seed: int, n_levels: int | None) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    groups = rng.integers(0, 250, n) * 7 - 30  # sparse, negative group values
    labels = (rng.random(n) < 0.35).astype(np.float32)
    scores = rng.normal(size=n) + labels + 0.01 * groups
    if n_levels is not None:  # heavy ties inside groups
        scores = np.round(scores * n_levels) / n_levels
    assert gauc_score(labels, scores, groups) == pytest.approx(
        _naive_gauc(labels, scores, groups), abs=1e-12
    )


def test_gauc_known_values_and_one_group() -> None:
    # group 7: AUC 1, group 8: AUC 0, group 9 (one class) skipped
    assert gauc_score([0, 1, 0, 1, 1], [0.1, 0.9, 0.8, 0.2, 0.5], [7, 7, 8, 8, 9]) == 0.5
    # weights are the group sizes: 3 rows with AUC 1, 2 rows with AUC 0
    assert gauc_score([0, 1, 1, 0, 1], [0.1, 0.9, 0.8, 0.8, 0.2], ["a", "a", "a", "b", "b"]) == 0.6
    labels, scores = np.array([0, 1, 1, 0, 1, 0]), np.array([0.3, 0.2, 0.9, 0.1, 0.5, 0.5])
    assert gauc_score(labels, scores, np.zeros(6)) == auc_score(labels, scores)
    t = torch.tensor
    assert gauc_score(t([0.0, 1.0]), t([0.2, 0.1]), t([3, 3])) == 0.0


def test_gauc_errors() -> None:
    with pytest.raises(ValueError, match="at least one group with both classes, got none among 2"):
        gauc_score([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], [1, 1, 2, 2])
    with pytest.raises(ValueError, match="groups must be one-dimensional"):
        gauc_score([0, 1], [0.1, 0.2], [[1, 1]])
    with pytest.raises(
        ValueError, match=r"labels and groups must have the same shape, got \(2,\) and \(3,\)"
    ):
        gauc_score([0, 1], [0.1, 0.2], [1, 1, 1])
    with pytest.raises(ValueError, match="labels must be"):
        gauc_score([0, 2], [0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="scores must be finite"):
        gauc_score([0, 1], [0.1, np.nan], [1, 1])
