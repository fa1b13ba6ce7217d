"""Code the spawned ranks of tests/training/test_distributed.py run (importable by children)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from embedlab.data import CTRSplits, make_ctr
from embedlab.models import CTRModel, make_model
from embedlab.tables import make_table
from embedlab.training import (
    DistributedCTRTrainer,
    MemorySource,
    init_distributed,
    load_run_checkpoint,
    shutdown_distributed,
)

# 4001 rows -> 3201 train rows: 6 full global batches of 512 and a last one of 129 (65 + 64)
N_SAMPLES = 4001
METHODS = {"full": 1.0, "qr": 4.0}
SETTINGS: dict[str, Any] = {
    "epochs": 2,
    "batch_size": 512,
    "patience": None,
    "progress": False,
    "log_every": 4,
    "shuffle_buffer": 1024,
}


def splits() -> CTRSplits:
    return make_ctr(N_SAMPLES, (600, 300, 120, 50), seed=3).split(seed=3)


def build(method: str) -> CTRModel:
    torch.manual_seed(0)
    table = make_table(method, splits().fields, dim=8, compression=METHODS[method], seed=0)
    return make_model("deepfm(hidden=32-16, dropout=0)", table, seed=0)


def train(method: str) -> dict[str, torch.Tensor]:
    """Train ``method``'s model on the shared data in this process' group (or alone)."""
    model = build(method)
    DistributedCTRTrainer(**SETTINGS).fit_stream(model, MemorySource(splits()))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _join(rank: int, world: int, folder: Path, timeout_s: float) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    init_distributed(timeout_s=timeout_s, backend="gloo", init_method=f"file://{folder / 'init'}")


def ddp_rank(rank: int, world: int, folder: str) -> None:
    """``torch.multiprocessing.spawn`` target: train every method, rank 0 saves the states."""
    _join(rank, world, Path(folder), timeout_s=60.0)
    for method in METHODS:
        state = train(method)
        if rank == 0:
            save_file(state, str(Path(folder) / f"{method}.safetensors"))
    shutdown_distributed()


class FailingSource(MemorySource):
    """Raises on rank ``fail_rank`` when its training batches reach ``fail_batch``."""

    def __init__(self, data: CTRSplits, *, fail_rank: int, fail_batch: int) -> None:
        super().__init__(data)
        self.fail_rank, self.fail_batch = fail_rank, fail_batch

    def iter_batches(self, split: str, batch_size: int, **kw: Any) -> Iterator[Any]:  # type: ignore[override]
        for i, batch in enumerate(super().iter_batches(split, batch_size, **kw)):
            if split == "train" and kw.get("rank") == self.fail_rank and i == self.fail_batch:
                raise RuntimeError(f"rank {self.fail_rank} fails on purpose at batch {i}")
            yield batch


def dying_rank(rank: int, world: int, folder: str) -> None:
    """Rank 1 raises after 2 steps; every rank records what it raised and re-raises."""
    _join(rank, world, Path(folder), timeout_s=20.0)
    try:
        source = FailingSource(splits(), fail_rank=1, fail_batch=2)
        DistributedCTRTrainer(**SETTINGS).fit_stream(build("qr"), source)
    except Exception as exc:
        (Path(folder) / f"rank{rank}.txt").write_text(f"{type(exc).__name__}: {exc}")
        shutdown_distributed(wait=False)
        raise


def max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs((a[k].double() - b[k].double()).numpy()).max()) for k in a)


class KilledAt(MemorySource):
    """Raises on every rank after one step of the ``kill_at``-th training epoch (1-based,
    all phases counted), before any collective of that step: the group stays usable."""

    def __init__(self, data: CTRSplits, kill_at: int) -> None:
        super().__init__(data)
        self.kill_at, self.started = kill_at, 0

    def iter_batches(self, split: str, batch_size: int, **kw: Any) -> Iterator[Any]:  # type: ignore[override]
        killing = False
        if split == "train" and "epoch" in kw:
            self.started += 1
            killing = self.started == self.kill_at
        for i, batch in enumerate(super().iter_batches(split, batch_size, **kw)):
            if killing and i == 1:
                raise RuntimeError(f"killed in training epoch {self.kill_at}")
            yield batch


def resume_rank(rank: int, world: int, folder: str) -> None:
    """``spawn`` target: pep (two phases) trained whole, then killed inside its second
    phase and resumed from the checkpoint; rank 0 saves both final states."""
    root = Path(folder)
    _join(rank, world, root, timeout_s=60.0)
    settings = {**SETTINGS, "epochs": 2}

    def model() -> CTRModel:
        torch.manual_seed(0)
        table = make_table("pep", splits().fields, dim=8, compression=4.0, seed=0)
        return make_model("deepfm(hidden=32-16, dropout=0)", table, seed=0)

    full = model()
    DistributedCTRTrainer(**settings).fit_stream(
        full, MemorySource(splits()), checkpoint_dir=root / "a"
    )
    try:  # epochs 1-2: prune, 3-4: retrain
        DistributedCTRTrainer(**settings).fit_stream(
            model(), KilledAt(splits(), 4), checkpoint_dir=root / "b"
        )
        raise AssertionError("the run was not killed")
    except RuntimeError as exc:
        assert "killed in training epoch 4" in str(exc), exc
    if rank == 0:
        saved = load_run_checkpoint(root / "b")
        (root / "killed.txt").write_text(f"{saved.phase} {saved.epoch}")
    resumed = model()
    DistributedCTRTrainer(**settings).fit_stream(
        resumed, MemorySource(splits()), checkpoint_dir=root / "b", resume=True
    )
    if rank == 0:
        for name, m in (("full", full), ("resumed", resumed)):
            state = {k: v.detach().clone() for k, v in m.state_dict().items()}
            save_file(state, str(root / f"{name}.safetensors"))
    shutdown_distributed()
