"""Resuming a multi-phase run inside any phase: the finished phases' records, the table's
identity, and putting a model and its optimizer back as a checkpoint saw them.

A checkpoint written in phase ``k`` holds the results of phases ``0..k-1`` as JSON
(:class:`PhaseRecord`), so a resumed run skips them (no training, no hooks), and the
table's :meth:`~embedlab.tables.EmbeddingTable.phase_state` (``requires_grad`` flags and
resume attributes), so :meth:`~embedlab.tables.EmbeddingTable.restore_phase` rebuilds
the structure phases ``0..k-1`` left without rerunning them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from embedlab.tables import EmbeddingTable
from embedlab.training._ctr_result import TrainResult
from embedlab.training._run_checkpoint import EpochState

__all__ = [
    "PhaseRecord",
    "check_phase_position",
    "restore_model",
    "restore_optimizer",
    "table_identity",
]


@dataclass
class PhaseRecord:
    """One finished phase as :func:`~embedlab.training._ctr_step.run_phases` merges it."""

    result: TrainResult
    samples: int
    hook_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "result": self.result.to_dict(),
            "samples": self.samples,
            "hook_seconds": self.hook_seconds,
        }

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> PhaseRecord:
        return cls(TrainResult(**record["result"]), int(record["samples"]), record["hook_seconds"])


def table_identity(table: EmbeddingTable) -> dict[str, Any]:
    """What must be equal for a checkpoint's table state to belong to ``table``."""
    return {
        "method": table.name,
        "phases": list(table.phases),
        "fields": [[f.name, f.cardinality] for f in table.fields],
        "dim": table.dim,
        "compression": table.compression,
        "seed": table.seed,
        "hyper": json.loads(json.dumps(table.hyper_parameters(), default=repr)),
    }


def check_phase_position(state: EpochState, table: EmbeddingTable) -> None:
    """The checkpoint's phase exists in ``table`` and every phase before it has a record.

    Raises:
        ValueError: naming the checkpoint file and what does not fit.
    """
    if not 0 <= state.phase < len(table.phases):
        raise ValueError(
            f"--resume: checkpoint {state.source} was written in phase {state.phase}, table "
            f"{table.name!r} has phases {list(table.phases)}"
        )
    if len(state.finished) != state.phase:
        raise ValueError(
            f"--resume: checkpoint {state.source} was written in phase {state.phase} but "
            f"records {len(state.finished)} finished phases (an older embedlab wrote it "
            "without them); run afresh"
        )


def _table_prefix(model: nn.Module, table: nn.Module) -> str:
    for name, module in model.named_modules():
        if module is table:
            return f"{name}." if name else ""
    raise ValueError("model.table must be a submodule of model")


def restore_model(model: nn.Module, table: EmbeddingTable, state: EpochState) -> None:
    """``table.restore_phase`` with its part of ``state.model``, then the whole model's
    state dict (strict).

    Raises:
        ValueError: the checkpoint's state does not fit the model (the file is named).
    """
    prefix = _table_prefix(model, table)
    own = {k[len(prefix) :]: v for k, v in state.model.items() if k.startswith(prefix)}
    try:
        table.restore_phase(state.phase, own, state.table)
        model.load_state_dict(state.model)
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0:3]
        raise ValueError(
            f"--resume: checkpoint state {state.source} does not fit this model "
            f"({' '.join(line.strip() for line in first)})"
        ) from None


def restore_optimizer(optimizer: torch.optim.Optimizer, state: EpochState) -> None:
    """Adam's per-parameter state from ``state`` (its settings stay as built) and torch's
    global RNG state."""
    opt_state = optimizer.state_dict()
    opt_state["state"] = state.optimizer
    optimizer.load_state_dict(opt_state)
    torch.set_rng_state(state.rng)
