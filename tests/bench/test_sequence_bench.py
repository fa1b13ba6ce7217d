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


def test_din_on_data_without_history_is_a_clear_error() -> None:
    flat = make_ctr(500, (20, 10), seed=0).split(seed=0)
    config = CTRBenchConfig(model="din", methods=["full"], epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"model 'din' needs behaviour-sequence data"):
        run_ctr_bench(flat, config)


def test_cli_din_without_history_exits_cleanly() -> None:
    from typer.testing import CliRunner

    from embedlab.cli import app

    result = CliRunner().invoke(
        app, ["bench", "ctr", "--data", "synthetic", "--model", "din", "--methods", "full"]
    )
    assert result.exit_code != 0 and "needs behaviour-sequence data" in result.output
    assert "Traceback" not in result.output
