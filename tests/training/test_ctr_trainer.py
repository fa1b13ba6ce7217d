"""CTRTrainer: early stopping, determinism, hooks, NaN detection, evaluation, timing."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import torch

from embedlab.data import CTRDataset, CTRSplits, make_ctr
from embedlab.models import CTRModel, make_model
from embedlab.tables import Field, FullTable
from embedlab.training import CTRTrainer, TrainResult, auc_score, log_loss


@pytest.fixture(scope="module")
def splits() -> CTRSplits:
    return make_ctr(6000, (100, 50, 20, 5), seed=1).split(seed=0)


def fm(fields: Sequence[Field], table: FullTable | None = None, **kwargs: object) -> CTRModel:
    return make_model("fm", table or FullTable(fields, dim=8), **kwargs)


def trainer(**kwargs: object) -> CTRTrainer:
    defaults: dict[str, object] = {"epochs": 3, "batch_size": 512, "lr": 1e-2, "progress": False}
    return CTRTrainer(**{**defaults, **kwargs})  # type: ignore[arg-type]


class RecordingTable(FullTable):
    """A full table that records the hooks the trainer calls (never registered globally)."""

    def __init__(self, fields: Sequence[Field], dim: int) -> None:
        super().__init__(fields, dim)
        self.steps: list[int] = []
        self.epochs: list[int] = []

    def on_step(self, step: int) -> None:
        self.steps.append(step)

    def on_epoch_end(self, epoch: int) -> None:
        self.epochs.append(epoch)


class ScramblingTable(FullTable):
    """Destroys its weights at the end of epochs 3, 4, ..., so they evaluate worse than epoch 2."""

    def on_epoch_end(self, epoch: int) -> None:
        if epoch >= 3:
            with torch.no_grad():
                self.weight.copy_(
                    torch.randn(self.weight.shape, generator=torch.Generator().manual_seed(epoch))
                )


class PoisonTable(FullTable):
    """Its weights become NaN after optimizer step ``at``."""

    def __init__(self, fields: Sequence[Field], dim: int, at: int) -> None:
        super().__init__(fields, dim)
        self.at = at

    def on_step(self, step: int) -> None:
        if step == self.at:
            with torch.no_grad():
                self.weight.fill_(float("nan"))


def test_fit_returns_history_and_timing(splits: CTRSplits) -> None:
    result = trainer().fit(fm(splits.fields), splits.train, splits.valid)
    assert isinstance(result, TrainResult)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert set(result.history[0]) == {
        "epoch",
        "phase",
        "train_loss",
        "valid_auc",
        "valid_logloss",
        "seconds",
        "eval_seconds",
    }
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.epochs_run == 3 and result.stop_reason == "max_epochs"
    assert result.steps == 3 * int(np.ceil(len(splits.train) / 512))
    hooks = sum(p["hook_seconds"] for p in result.phases)
    assert result.train_seconds == pytest.approx(sum(h["seconds"] for h in result.history) + hooks)
    assert [p["name"] for p in result.phases] == ["train"]
    assert result.samples_per_second == pytest.approx(3 * len(splits.train) / result.train_seconds)
    assert result.best_valid_auc == max(h["valid_auc"] for h in result.history)
    assert result.to_dict()["best_epoch"] == result.best_epoch


def test_early_stopping_restores_the_best_epoch(splits: CTRSplits) -> None:
    model = fm(splits.fields, ScramblingTable(splits.fields, dim=8))
    t = trainer(epochs=8, patience=2)
    result = t.fit(model, splits.train, splits.valid)
    aucs = [h["valid_auc"] for h in result.history]
    assert result.stop_reason == "early_stopping"
    assert result.best_epoch == 2 and result.epochs_run == 4
    assert aucs[2] < aucs[1] and aucs[3] < aucs[1]
    # the model holds epoch 2's weights again
    assert t.evaluate(model, splits.valid)["auc"] == aucs[1] == result.best_valid_auc


def test_same_seed_same_history_and_global_rng_untouched(splits: CTRSplits) -> None:
    def run(seed: int) -> tuple[list[dict[str, float]], torch.Tensor]:
        model = make_model("deepfm", FullTable(splits.fields, dim=8), hidden=(16,), dropout=0.3)
        result = trainer(seed=seed).fit(model, splits.train, splits.valid)
        strip = [{k: v for k, v in h.items() if "seconds" not in k} for h in result.history]
        return strip, next(model.parameters()).detach().clone()

    state = torch.random.get_rng_state()
    h1, w1 = run(0)
    h2, w2 = run(0)
    h3, _ = run(1)
    assert h1 == h2 and torch.equal(w1, w2)
    assert h1 != h3
    assert torch.equal(torch.random.get_rng_state(), state)


def test_hooks_are_called_once_per_step_and_epoch(splits: CTRSplits) -> None:
    table = RecordingTable(splits.fields, dim=4)
    train = splits.train.subset(np.arange(1000))
    result = trainer(epochs=3, batch_size=300).fit(fm(splits.fields, table), train, splits.valid)
    assert table.steps == list(range(1, 13))  # ceil(1000 / 300) = 4 steps x 3 epochs
    assert table.epochs == [1, 2, 3]
    assert result.steps == 12


def test_nan_loss_raises_with_epoch_and_step(splits: CTRSplits) -> None:
    train = splits.train.subset(np.arange(2000))  # 4 steps per epoch
    model = fm(splits.fields, PoisonTable(splits.fields, dim=8, at=6))
    with pytest.raises(RuntimeError, match=r"training loss is nan at epoch 2, step 7 \(batch 3 of"):
        trainer(epochs=3).fit(model, train, splits.valid)


def test_evaluate_matches_metrics_on_predictions(splits: CTRSplits) -> None:
    t = trainer(epochs=1, eval_batch_size=333)
    model = fm(splits.fields)
    t.fit(model, splits.train)
    probs = t.predict(model, splits.test)
    assert probs.shape == (len(splits.test),)
    metrics = t.evaluate(model, splits.test)
    assert metrics == {
        "auc": auc_score(splits.test.labels, probs),
        "logloss": log_loss(splits.test.labels, probs),
    }
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(splits.test.ids)).double().numpy()
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits)), rtol=1e-6)


def test_without_valid_data_the_last_epoch_is_kept(splits: CTRSplits) -> None:
    result = trainer(epochs=2).fit(fm(splits.fields), splits.train)
    assert result.best_epoch == 2 and result.best_valid_auc is None
    assert "valid_auc" not in result.history[0]


def test_time_limit_stops_training(splits: CTRSplits) -> None:
    result = trainer(epochs=50, batch_size=64, max_train_seconds=0.05).fit(
        fm(splits.fields), splits.train, splits.valid
    )
    assert result.stop_reason == "time_limit" and result.epochs_run < 50
    assert len(result.history) == result.epochs_run


def test_embedding_l2_and_weight_decay(splits: CTRSplits) -> None:
    base = trainer(epochs=1).fit(fm(splits.fields), splits.train)
    reg = trainer(epochs=1, embedding_l2=1.0, weight_decay=1e-3).fit(
        fm(splits.fields), splits.train
    )
    assert reg.history[0]["train_loss"] > base.history[0]["train_loss"]
    model = make_model("deepfm", FullTable(splits.fields, dim=4), hidden=(8,))
    groups = trainer(weight_decay=0.5)._optimizer(model).param_groups
    table_group = next(g for g in groups if any(p is model.table.weight for p in g["params"]))
    assert table_group["weight_decay"] == 0.0
    assert [g["weight_decay"] for g in groups if g is not table_group] == [0.5]


def test_dense_features_are_used(splits: CTRSplits) -> None:
    rng = np.random.default_rng(0)

    def with_dense(ds: CTRDataset) -> CTRDataset:
        dense = np.stack(
            [ds.labels * 2 - 1 + rng.normal(0, 1, len(ds)), rng.normal(size=len(ds))], 1
        )
        return CTRDataset(ds.ids, ds.labels, ds.fields, dense=dense)

    train, valid = with_dense(splits.train), with_dense(splits.valid)
    model = make_model("deepfm", FullTable(splits.fields, dim=4), hidden=(8,), n_dense=2)
    result = trainer(epochs=2).fit(model, train, valid)
    assert (
        result.best_valid_auc is not None and result.best_valid_auc > 0.8
    )  # label leaks via dense
    with pytest.raises(ValueError, match="train must have n_dense=0 numeric features"):
        trainer().fit(fm(splits.fields), train)


def test_progress_bar_runs(splits: CTRSplits, capsys: pytest.CaptureFixture[str]) -> None:
    trainer(epochs=1, progress=True).fit(fm(splits.fields), splits.train, splits.valid)
    assert "epoch 1/1" in capsys.readouterr().out


def test_data_must_match_the_model(splits: CTRSplits) -> None:
    other = make_ctr(500, (10, 10), seed=0)
    with pytest.raises(ValueError, match="valid must have the model table's 4 fields, got 2"):
        trainer().fit(fm(splits.fields), splits.train, other)
    with pytest.raises(TypeError, match="model must be a CTRModel, got Linear"):
        trainer().evaluate(torch.nn.Linear(2, 1), splits.test)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "epochs must be >= 1, got 0"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1, got 0"),
        ({"lr": 0.0}, ValueError, "lr must be > 0, got 0.0"),
        ({"weight_decay": -1.0}, ValueError, "weight_decay must be >= 0"),
        ({"patience": 0}, ValueError, "patience must be >= 1, got 0"),
        ({"device": "gpu0"}, ValueError, "device must name a torch device"),
        ({"progress": "yes"}, TypeError, "progress must be True or False"),
        ({"max_train_seconds": 0}, ValueError, "max_train_seconds must be > 0"),
    ],
)
def test_trainer_parameter_errors(kwargs: dict[str, object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        CTRTrainer(**kwargs)  # type: ignore[arg-type]
