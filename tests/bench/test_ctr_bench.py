from __future__ import annotations

from collections.abc import Sequence

import pytest

from embedlab.bench import CTRBenchConfig, run_ctr_bench, summary_notes, summary_rows
from embedlab.data import CTRSplits, make_ctr
from embedlab.tables import TABLES, Field, FullTable


@pytest.fixture(scope="module")
def splits() -> CTRSplits:
    return make_ctr(6000, (300, 100, 20, 5), seed=1).split(seed=1)


def _config(methods: Sequence[str], compressions: Sequence[float] = (10.0,)) -> CTRBenchConfig:
    return CTRBenchConfig(
        model="fm",
        methods=methods,
        compressions=compressions,
        dim=8,
        epochs=1,
        batch_size=512,
        progress=False,
    )


def test_grid_order_reference_and_ratios(splits: CTRSplits) -> None:
    seen = []
    records = run_ctr_bench(
        splits, _config(["hash", "full", "ue"], (2.0, 10.0)), on_record=seen.append
    )
    assert [(r.method, r.compression) for r in records] == [
        ("full", 1.0),
        ("hash", 2.0),
        ("hash", 10.0),
        ("ue", 2.0),
        ("ue", 10.0),
    ]
    assert seen == records
    full = records[0]
    assert full.params["compression_reached"] == pytest.approx(1.0)
    assert "samples_per_s_vs_full" not in full.timing
    for r in records[1:]:
        assert r.status == "ok"
        assert r.memory_bytes is not None and r.memory_bytes <= r.params["budget_bytes"]
        assert r.params["compression_reached"] >= r.compression
        ratio = r.timing["samples_per_s"] / full.timing["samples_per_s"]
        assert r.timing["samples_per_s_vs_full"] == pytest.approx(ratio)
        assert r.metrics["auc_delta_vs_full"] == pytest.approx(
            r.metrics["auc"] - full.metrics["auc"]
        )
        assert r.params["oracle_auc"] > 0.5  # synthetic data knows the best AUC
    for r in records:  # params.history: one entry per epoch, its valid AUC the best one's
        (epoch,) = r.params["history"]
        assert set(epoch) == {"epoch", "train_loss", "valid_auc", "valid_logloss"}
        assert epoch["epoch"] == 1 and epoch["valid_auc"] == r.metrics["valid_auc"]
        assert epoch["train_loss"] > 0


def test_infeasible_budget_is_a_record_not_a_crash(splits: CTRSplits) -> None:
    records = run_ctr_bench(splits, _config(["qr"], (1000.0,)))
    assert records[1].status == "infeasible"
    assert "qr cannot reach compression 1000" in (records[1].error or "")
    assert records[1].metrics == {}
    rows = summary_rows(records)
    assert rows[1][-1] == "infeasible"
    assert summary_notes(records) == [f"qr @ 1000x: {records[1].error}"]


class _Liar(FullTable):
    """Claims compression but keeps the full table: the harness must catch it."""

    def __init__(
        self, fields: Sequence[Field], dim: int, *, compression: float = 1.0, seed: int = 0
    ) -> None:
        super().__init__(fields, dim, compression=1.0, seed=seed)
        self.compression = compression


def test_budget_violation_stops_the_run(splits: CTRSplits, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TABLES._items, "liar", _Liar)
    with pytest.raises(RuntimeError, match=r"table 'liar' broke its budget at compression 10"):
        run_ctr_bench(splits, _config(["liar"]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"methods": ["nope"]}, "unknown table 'nope'"),
        ({"model": "nope"}, "unknown model 'nope'"),
        ({"compressions": [0.5]}, "compression must be >= 1, got 0.5"),
        ({"compressions": []}, "compressions must not be empty"),
        ({"methods": []}, "methods must not be empty"),
        ({"epochs": 0}, "epochs must be >= 1, got 0"),
        ({"seeds": [-1]}, "seed must be >= 0, got -1"),
        ({"tune": 0}, "tune must be >= 1, got 0"),
        ({"methods": ["full", "qr(bogus=1)"]}, "unknown hyper-parameter 'bogus' for table 'qr'"),
        ({"model": "deepfm(hiden=8)"}, "unknown hyper-parameter 'hiden' for model 'deepfm'"),
        ({"embedding_l2": -1.0}, "embedding_l2 must be >= 0"),
    ],
)
def test_config_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CTRBenchConfig(**kwargs)  # type: ignore[arg-type]


def test_tune_keeps_the_best_candidate_on_validation(
    splits: CTRSplits, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from embedlab.bench import _tune

    small = {**_tune.TUNE_SPACE, "schedule": ((1, 1),), "batch_size": (256, 512)}
    monkeypatch.setattr(_tune, "TUNE_SPACE", small)
    config = dataclasses.replace(_config(["hash"]), tune=3)
    records = run_ctr_bench(splits, config)
    assert [r.method for r in records] == ["full", "hash"]
    for r in records:
        tune = r.params["tune"]
        assert tune["candidates"] == 3 and tune["selected_on"] == "valid_auc"
        valid = [t["valid_auc"] for t in tune["trials"]]
        assert r.metrics["valid_auc"] == max(valid)
        assert tune["trials"][0]["batch_size"] == 512  # candidate 0: the untuned flags
        assert r.timing["tune_train_s"] >= r.timing["train_s"]
        assert r.params["dropout"] is None  # fm has no dropout: the tuned one is not passed
    untuned = run_ctr_bench(splits, _config(["hash"]))
    assert untuned[0].config_hash != records[0].config_hash
    assert "tune" not in untuned[0].params


def test_takes_dropout() -> None:
    from embedlab.bench._tune import takes_dropout

    assert takes_dropout("deepfm(hidden=8)") and not takes_dropout("fm")


def test_record_states_the_dropout_the_model_trained_with(splits: CTRSplits) -> None:
    import dataclasses

    base = dataclasses.replace(_config(["full"]), model="deepfm(hidden=8)")
    assert run_ctr_bench(splits, base)[0].params["dropout"] == 0.2  # DeepFM's own default
    spec = dataclasses.replace(base, model="deepfm(hidden=8, dropout=0.0)")
    assert run_ctr_bench(splits, spec)[0].params["dropout"] == 0.0
