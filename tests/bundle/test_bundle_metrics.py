"""Recall@k / NDCG@k against a plain loop."""

from __future__ import annotations

import math

import numpy as np
import pytest

from embedlab.bundle import completion_metrics


def _naive(
    scores: np.ndarray, given: list[np.ndarray], rest: list[np.ndarray], k: int
) -> tuple[float, float]:
    recalls, ndcgs = [], []
    for row, g, r in zip(scores, given, rest, strict=True):
        ranked = sorted(
            (j for j in range(len(row)) if j not in set(g.tolist())), key=lambda j: (-row[j], j)
        )
        top = ranked[:k]
        hits = [1.0 if j in set(r.tolist()) else 0.0 for j in top]
        recalls.append(sum(hits) / len(r))
        dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
        idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(r))))
        ndcgs.append(dcg / idcg)
    return float(np.mean(recalls)), float(np.mean(ndcgs))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(6, 30))
    given, rest = [], []
    for _ in range(6):
        perm = rng.permutation(30)[: rng.integers(2, 12)]
        given.append(perm[: len(perm) // 2])
        rest.append(perm[len(perm) // 2 :])
    got = completion_metrics(scores, given, rest, k=5)
    recall, ndcg = _naive(scores, given, rest, 5)
    assert got["recall@5"] == pytest.approx(recall) and got["ndcg@5"] == pytest.approx(ndcg)


def test_given_items_are_excluded() -> None:
    scores = np.array([[9.0, 8.0, 1.0, 0.0]])
    got = completion_metrics(scores, [np.array([0, 1])], [np.array([2])], k=1)
    assert got == {"recall@1": 1.0, "ndcg@1": 1.0}


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="scores must be"):
        completion_metrics(np.zeros((2, 4)), [np.array([0])], [np.array([1])])
    with pytest.raises(ValueError, match=r"rest\[0\] must hold at least one item"):
        completion_metrics(np.zeros((1, 4)), [np.array([0])], [np.array([], dtype=int)])
    with pytest.raises(ValueError, match="k must be >= 1"):
        completion_metrics(np.zeros((1, 4)), [np.array([0])], [np.array([1])], k=0)
