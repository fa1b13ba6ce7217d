"""The CTR suite on behaviour-sequence data: every model gets the history, records carry gAUC."""

from __future__ import annotations

import pytest

from embedlab.bench import CTRBenchConfig, run_ctr_bench
from embedlab.data import CTRSplits, load_ctr, make_ctr


@pytest.fixture(scope="module")
def splits() -> CTRSplits:
    return load_ctr("synthetic-seq", n_users=120, n_items=60, n_topics=4, events_per_user=10)


@pytest.mark.parametrize("model", ["din(attention_hidden=8, hidden=16)", "deepfm(hidden=16)"])
def test_sequence_data_records_gauc(splits: CTRSplits, model: str) -> None:
    config = CTRBenchConfig(
        model=model, methods=["full"], dim=8, epochs=1, batch_size=256, progress=False
    )
    (record,) = run_ctr_bench(splits, config)
    assert record.status == "ok" and record.dataset == "synthetic-seq"
    assert 0.0 <= record.metrics["gauc"] <= 1.0
    assert 0.0 <= record.metrics["auc"] <= 1.0
    assert record.params["oracle_auc"] > 0.5


def test_data_without_groups_has_no_gauc() -> None:
    data = make_ctr(1500, (30, 10), seed=0).split(seed=0)
    config = CTRBenchConfig(model="fm", methods=["full"], dim=4, epochs=1, progress=False)
    (record,) = run_ctr_bench(data, config)
    assert "gauc" not in record.metrics
