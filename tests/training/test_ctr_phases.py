"""CTRTrainer with a multi-phase table: hooks order, per-phase results, charged time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest
import torch

from embedlab.data import CTRSplits, make_ctr
from embedlab.models import make_model
from embedlab.tables import Field, FullTable
from embedlab.tables._phases import PhaseContext
from embedlab.training import CTRTrainer


@pytest.fixture(scope="module")
def splits() -> CTRSplits:
    return make_ctr(4000, (60, 30, 5), seed=2).split(seed=0)


class TwoPhaseTable(FullTable):
    """Search, then zero the second half of the dims and retrain (never registered)."""

    phases: ClassVar[tuple[str, ...]] = ("search", "retrain")
    mask: torch.Tensor

    def __init__(self, fields: Sequence[Field], dim: int) -> None:
        super().__init__(fields, dim)
        self.register_buffer("mask", torch.ones(dim))
        self.calls: list[tuple[str, str]] = []
        self.aucs: list[float] = []
        self.ctx: PhaseContext | None = None

    def start_phase(self, phase: str, ctx: PhaseContext) -> None:
        self.calls.append(("start", phase))
        self.ctx = ctx

    def end_phase(self, phase: str, ctx: PhaseContext) -> None:
        self.calls.append(("end", phase))
        self.aucs.append(ctx.evaluate())
        if phase == "search":
            self.mask[self.dim // 2 :] = 0.0

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return super().embed(ids) * self.mask


def test_phases_run_in_order_with_context(splits: CTRSplits) -> None:
    table = TwoPhaseTable(splits.fields, dim=8)
    trainer = CTRTrainer(epochs=2, batch_size=500, lr=1e-2, progress=False, seed=3)
    result = trainer.fit(make_model("fm", table), splits.train, splits.valid)
    assert table.calls == [
        ("start", "search"),
        ("end", "search"),
        ("start", "retrain"),
        ("end", "retrain"),
    ]
    assert [p["name"] for p in result.phases] == ["search", "retrain"]
    assert [h["phase"] for h in result.history] == [0.0, 0.0, 1.0, 1.0]
    assert result.epochs_run == 4
    assert result.steps == 4 * 7  # 3,200 train rows / 500 per batch -> 7 steps per epoch
    ctx = table.ctx
    assert ctx is not None
    assert ctx.steps_per_epoch == 7 and ctx.max_epochs == 2 and ctx.seed == 3
    assert ctx.train is splits.train and ctx.valid is splits.valid
    assert all(0.5 < auc <= 1.0 for auc in table.aucs)
    hooks = sum(p["hook_seconds"] for p in result.phases)
    assert hooks > 0
    assert result.train_seconds == pytest.approx(sum(h["seconds"] for h in result.history) + hooks)
    assert result.best_valid_auc == result.phases[-1]["best_valid_auc"]
    out = table(torch.from_numpy(splits.test.ids[:5]))
    assert torch.all(out[..., 4:] == 0)  # the structure cut after the search is kept


def test_search_without_valid_data_is_a_clear_error(splits: CTRSplits) -> None:
    table = TwoPhaseTable(splits.fields, dim=4)
    trainer = CTRTrainer(epochs=1, batch_size=500, progress=False)
    with pytest.raises(ValueError, match=r"valid data must be given to train table"):
        trainer.fit(make_model("fm", table), splits.train)
