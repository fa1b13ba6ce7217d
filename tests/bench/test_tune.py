"""The tuning candidates: base first, seeded, distinct, the same for every method."""

from __future__ import annotations

import math

import pytest

from embedlab.bench._tune import TUNE_SPACE, TrainSettings, choose_best, tune_candidates


def test_candidates_are_seeded_distinct_and_start_with_the_base() -> None:
    base = TrainSettings(lr=1e-3, batch_size=2048, epochs=10, patience=2)
    cands = tune_candidates(8, base)
    assert len(cands) == 8 and cands[0] == base
    assert len(set(cands)) == 8
    assert cands == tune_candidates(8, base)  # the same list for every method and seed
    for c in cands[1:]:
        assert c.lr in TUNE_SPACE["lr"] and c.batch_size in TUNE_SPACE["batch_size"]
        assert (c.epochs, c.patience) in TUNE_SPACE["schedule"]
    assert tune_candidates(1, base) == [base]


def test_candidate_count_is_checked() -> None:
    with pytest.raises(ValueError, match=r"tune must be >= 1, got 0"):
        tune_candidates(0, TrainSettings())
    with pytest.raises(ValueError, match=r"tune must be <= \d+ \(the grid's size \+ 1\)"):
        tune_candidates(10**6, TrainSettings())


def test_choose_best_prefers_the_earliest_and_skips_nan() -> None:
    assert choose_best([0.7, 0.8, 0.8]) == 1
    assert choose_best([math.nan, 0.6]) == 1
    assert choose_best([math.nan]) == 0
    with pytest.raises(ValueError, match="valid_aucs must not be empty"):
        choose_best([])
