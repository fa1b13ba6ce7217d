"""auc_score and log_loss against scikit-learn, with ties, and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from embedlab.training import auc_score, log_loss


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_levels", [3, 20, None])
def test_auc_matches_sklearn_with_ties(seed: int, n_levels: int | None) -> None:
    rng = np.random.default_rng(seed)
    n = 2000 + 137 * seed
    labels = (rng.random(n) < 0.3).astype(np.float32)
    scores = rng.normal(size=n) + labels
    if n_levels is not None:  # heavy ties
        scores = np.round(scores * n_levels / 6) / n_levels
    assert abs(auc_score(labels, scores) - roc_auc_score(labels, scores)) < 1e-9


@pytest.mark.parametrize("seed", range(5))
def test_log_loss_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=1500)
    probs = rng.uniform(0.01, 0.99, size=1500)
    assert abs(log_loss(labels, probs) - sk_log_loss(labels, probs)) < 1e-9


def test_small_known_values() -> None:
    assert auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert auc_score([0, 1], [0.5, 0.5]) == 0.5
    assert auc_score([1, 0], [0.9, 0.1]) == 1.0
    assert log_loss([1, 0], [1.0, 0.0]) == pytest.approx(-np.log(1 - 1e-7))


def test_accepts_torch_tensors_and_lists() -> None:
    labels = torch.tensor([0.0, 1.0, 1.0, 0.0])
    scores = torch.tensor([0.2, 0.7, 0.1, 0.05])
    assert auc_score(labels, scores) == auc_score(labels.tolist(), scores.numpy())


def test_auc_is_rank_based() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = rng.normal(size=500)
    assert auc_score(labels, scores) == pytest.approx(auc_score(labels, 1 / (1 + np.exp(-scores))))


@pytest.mark.parametrize(
    ("labels", "scores", "match"),
    [
        ([], [], "labels must not be empty"),
        ([0, 1], [0.5], r"labels and scores must have the same shape, got \(2,\) and \(1,\)"),
        (
            [0, 1, 1],
            [0.1, np.nan, 0.3],
            r"scores must be finite, got a non-finite value at index \(1,\)",
        ),
        ([1, 1, 1], [0.1, 0.2, 0.3], r"labels must contain both classes \(0 and 1\).*only class 1"),
        ([0, 0], [0.1, 0.2], "only class 0"),
        ([0, 2], [0.1, 0.2], "labels must be 0 or 1, got 2.0"),
        ([[0, 1]], [[0.1, 0.2]], "labels must be one-dimensional"),
    ],
)
def test_auc_errors(labels: list[float], scores: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        auc_score(labels, scores)


@pytest.mark.parametrize(
    ("labels", "probs", "kwargs", "match"),
    [
        ([], [], {}, "labels must not be empty"),
        ([0, 1], [0.5, 0.5, 0.5], {}, "labels and probs must have the same shape"),
        ([0, 1], [0.5, np.inf], {}, "probs must be finite"),
        ([0, 1], [0.5, 1.5], {}, r"probs must be in \[0, 1\], got 1.5"),
        ([0, 1], [0.5, 0.5], {"eps": 0.0}, "eps must be > 0, got 0.0"),
        ([0, 1], [0.5, 0.5], {"eps": 0.7}, r"eps must be in \(0, 0.5\), got 0.7"),
    ],
)
def test_log_loss_errors(
    labels: list[float], probs: list[float], kwargs: dict[str, float], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        log_loss(labels, probs, **kwargs)


def test_log_loss_single_class_is_defined() -> None:
    assert log_loss([1, 1], [0.5, 0.5]) == pytest.approx(np.log(2))
