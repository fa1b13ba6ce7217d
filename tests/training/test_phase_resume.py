"""A streamed run killed in any phase of a multi-phase table resumes to the uninterrupted
result; bad, foreign and truncated checkpoints are refused by name; no pickle.

Every registered table with more than one phase is trained 2 epochs per phase and killed
after one step of its 2nd, 3rd or 4th epoch: inside phase 0, between the phases (the last
checkpoint is phase 0's last epoch, so the resume reruns ``end_phase``) and inside phase
1. Expected exactly equal (tolerance 0): one process, fixed seeds, the same operations in
the same order; dropout is on, so torch's RNG state must come back too.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch import nn

from embedlab.data import CTRSplits, make_ctr
from embedlab.models import CTRModel, make_model
from embedlab.tables import TABLES, EmbeddingTable, Field, make_table
from embedlab.tables._phases import PhaseContext
from embedlab.training import DistributedCTRTrainer, MemorySource, load_run_checkpoint
from embedlab.training._ctr_result import TrainResult

MULTI_PHASE = sorted(n for n in TABLES if len(TABLES.get(n).phases) > 1)
# the search scores candidates by valid AUC: a few keep the test short
TABLE_KWARGS: dict[str, dict[str, Any]] = {"optembed": {"population": 4, "max_evals": 8}}
MODEL = "deepfm(hidden=16, dropout=0.2)"
SETTINGS: dict[str, Any] = {
    "epochs": 2,
    "batch_size": 256,
    "patience": None,
    "progress": False,
    "log_every": 2,
    "shuffle_buffer": 512,
    "lr": 3e-3,
}
TIMING = ("seconds", "eval_seconds")


@cache
def splits() -> CTRSplits:
    return make_ctr(2400, (80, 40, 12, 6), seed=5).split(seed=5)


def build(method: str, **kw: Any) -> CTRModel:
    torch.manual_seed(0)
    args = {**TABLE_KWARGS.get(method, {}), **kw}
    table = make_table(method, splits().fields, dim=8, compression=4.0, seed=0, **args)
    return make_model(MODEL, table, seed=0)


class KilledSource(MemorySource):
    """Raises after one step of the ``kill_at``-th training epoch (1-based, all phases)."""

    def __init__(self, data: CTRSplits, kill_at: int) -> None:
        super().__init__(data)
        self.kill_at, self.epochs_started = kill_at, 0

    def iter_batches(self, split: str, batch_size: int, **kw: Any) -> Iterator[Any]:  # type: ignore[override]
        killing = False
        if split == "train" and "epoch" in kw:
            self.epochs_started += 1
            killing = self.epochs_started == self.kill_at
        for i, batch in enumerate(super().iter_batches(split, batch_size, **kw)):
            if killing and i == 1:
                raise RuntimeError(f"killed in training epoch {self.kill_at}")
            yield batch


def fit(model: CTRModel, folder: Path, source: MemorySource, **kw: Any) -> TrainResult:
    trainer = DistributedCTRTrainer(**SETTINGS)
    return trainer.fit_stream(model, source, checkpoint_dir=folder, **kw)


def outcome(model: CTRModel, result: TrainResult) -> dict[str, Any]:
    """Everything a run decides (parameters, flags, history, description), timings aside."""
    trainer = DistributedCTRTrainer(**SETTINGS)
    table = model.table
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "frozen": sorted(n for n, p in model.named_parameters() if not p.requires_grad),
        "history": [{k: v for k, v in h.items() if k not in TIMING} for h in result.history],
        "phases": [(p["name"], p["epochs_run"], p["best_epoch"]) for p in result.phases],
        "result": (result.best_epoch, result.best_valid_auc, result.epochs_run, result.steps),
        "describe": json.loads(json.dumps(table.describe(), default=repr)),
        "memory_bytes": table.memory_bytes(),
        "test": trainer.evaluate_stream(model, MemorySource(splits()), "test"),
    }


@cache
def uninterrupted(method: str, folder: str) -> dict[str, Any]:
    model = build(method)
    return outcome(model, fit(model, Path(folder), MemorySource(splits())))


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["state"].keys() == b["state"].keys()
    for key, value in a["state"].items():
        assert value.shape == b["state"][key].shape, key
        assert torch.equal(value, b["state"][key]), key  # exact: tolerance 0
    for key in ("frozen", "history", "phases", "result", "describe", "memory_bytes", "test"):
        assert a[key] == b[key], key


# killed in training epoch -> (phase, epoch) of the checkpoint the resume reads
KILLS = {2: (0, 1), 3: (0, 2), 4: (1, 1)}


@pytest.mark.parametrize("kill_at", sorted(KILLS))
@pytest.mark.parametrize("method", MULTI_PHASE)
def test_killed_run_resumes_to_the_uninterrupted_result(
    method: str, kill_at: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    full = uninterrupted(method, str(tmp_path_factory.mktemp(f"{method}-full")))
    folder = tmp_path_factory.mktemp(f"{method}-killed-{kill_at}")
    with pytest.raises(RuntimeError, match=f"killed in training epoch {kill_at}"):
        fit(build(method), folder, KilledSource(splits(), kill_at))
    saved = load_run_checkpoint(folder)
    assert (saved.phase, saved.epoch) == KILLS[kill_at]
    assert len(saved.finished) == saved.phase
    model = build(method)  # a fresh process builds the table afresh
    resumed = fit(model, folder, MemorySource(splits()), resume=True)
    assert_same(outcome(model, resumed), full)


def test_the_multi_phase_tables_are_all_covered() -> None:
    assert MULTI_PHASE == [
        "autodim", "autosrh", "dedup", "deeplight", "dnis", "dpq", "mgqe", "optembed", "pep"
    ]  # fmt: skip


class ShrinkTable(EmbeddingTable):
    """Never registered: ``end_phase("wide")`` replaces ``weight`` by its first half of
    columns (another shape, no load hook), freezes ``scale`` and sets a Python attribute."""

    phases: ClassVar[tuple[str, ...]] = ("wide", "narrow")
    resume_attrs: ClassVar[tuple[str, ...]] = ("kept",)

    def __init__(self, fields: Sequence[Field], dim: int, *, seed: int = 0) -> None:
        super().__init__(fields, dim, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(sum(self.cardinalities), dim, generator=gen))
        self.scale = nn.Parameter(torch.ones(dim))
        self.offsets: torch.Tensor
        offsets = torch.tensor(np.cumsum([0, *self.cardinalities[:-1]]))
        self.register_buffer("offsets", offsets, persistent=False)
        self.kept: list[int] | None = None

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        e = nn.functional.embedding(ids + self.offsets, self.weight)
        pad = self.dim - e.shape[-1]
        return nn.functional.pad(e, (0, pad)) * self.scale

    @torch.no_grad()
    def end_phase(self, phase: str, ctx: PhaseContext) -> None:
        if phase == "wide":
            self.kept = list(range(self.dim // 2))
            self.weight = nn.Parameter(self.weight[:, self.kept].clone())
            self.scale.requires_grad_(False)


def test_default_restore_adopts_new_shapes_and_frozen_parameters(tmp_path: Path) -> None:
    def model() -> CTRModel:
        torch.manual_seed(0)
        return make_model(MODEL, ShrinkTable(splits().fields, 8), seed=0)

    a = model()
    full = outcome(a, fit(a, tmp_path / "a", MemorySource(splits())))
    with pytest.raises(RuntimeError, match="killed"):
        fit(model(), tmp_path / "b", KilledSource(splits(), 4))
    b = model()
    resumed = fit(b, tmp_path / "b", MemorySource(splits()), resume=True)
    assert b.table.weight.shape == (138, 4) and not b.table.scale.requires_grad
    assert b.table.kept == [0, 1, 2, 3]  # type: ignore[attr-defined]
    assert_same(outcome(b, resumed), full)


def _killed_in_phase_1(folder: Path, method: str = "pep") -> None:
    with pytest.raises(RuntimeError, match="killed"):
        fit(build(method), folder, KilledSource(splits(), 4))


def test_a_checkpoint_of_another_table_is_refused(tmp_path: Path) -> None:
    _killed_in_phase_1(tmp_path)
    source = MemorySource(splits())
    with pytest.raises(
        ValueError, match="written with the table's method='pep', this run has the table's "
        "method='deeplight'; resume with the same method",
    ):  # fmt: skip
        fit(build("deeplight"), tmp_path, source, resume=True)
    with pytest.raises(ValueError, match=r"the table's hyper=\{\}, this run has the table's "):
        fit(build("pep", retrain="finetune"), tmp_path, source, resume=True)
    with pytest.raises(ValueError, match=r"written with lr=0\.003, this run has lr=0\.01"):
        DistributedCTRTrainer(**{**SETTINGS, "lr": 0.01}).fit_stream(
            build("pep"), source, checkpoint_dir=tmp_path, resume=True
        )
    torch.manual_seed(0)
    other = make_model("fm", build("pep").table, seed=0)  # same table, another model
    with pytest.raises(ValueError, match=r"state-p1-e0001\.safetensors does not fit this model"):
        fit(other, tmp_path, source, resume=True)


def test_truncated_or_inconsistent_checkpoints_name_the_file(tmp_path: Path) -> None:
    _killed_in_phase_1(tmp_path)
    source = MemorySource(splits())
    state = tmp_path / "state-p1-e0001.safetensors"
    meta_path = tmp_path / "meta.json"
    good_meta, good_state = meta_path.read_text(), state.read_bytes()
    state.write_bytes(good_state[: len(good_state) // 2])
    with pytest.raises(ValueError, match=r"state-p1-e0001\.safetensors is corrupt: its SHA-256"):
        fit(build("pep"), tmp_path, source, resume=True)
    # a truncated file whose digest meta.json agrees with (written by a broken disk copy)
    meta = json.loads(good_meta)
    meta["sha256"] = hashlib.sha256(state.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"state-p1-e0001\.safetensors is unreadable"):
        fit(build("pep"), tmp_path, source, resume=True)
    state.write_bytes(good_state)
    meta = json.loads(good_meta)
    meta["finished"] = []
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"e0001\.safetensors was written in phase 1 but records"):
        fit(build("pep"), tmp_path, source, resume=True)
    meta_path.write_text(good_meta[: len(good_meta) // 2])
    with pytest.raises(ValueError, match=r"meta\.json is not readable JSON"):
        fit(build("pep"), tmp_path, source, resume=True)


def test_checkpoints_are_safetensors_and_json_without_pickle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RuntimeError, match="killed"):  # inside pep's prune phase
        fit(build("pep"), tmp_path, KilledSource(splits(), 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json", "state-p0-e0001.safetensors"]
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["table_state"]["attrs"]["_best_nnz"] > 0
    with safe_open(str(tmp_path / "state-p0-e0001.safetensors"), framework="pt") as f:
        keys = set(f.keys())
    assert "table/_best_values" in keys and "rng/torch" in keys
    assert any(k.startswith("model/table.") for k in keys)

    def refuse(*args: Any, **kw: Any) -> Any:
        raise AssertionError("a checkpoint must not be unpickled")

    for module, name in ((pickle, "load"), (pickle, "loads"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)
    model = build("pep")
    fit(model, tmp_path, MemorySource(splits()), resume=True)
    assert not bool(model.table.searching)
