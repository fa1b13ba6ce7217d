"""Per-epoch checkpoints of a streamed CTR run: safetensors + JSON, no pickle.

A checkpoint folder holds ``state-p{phase}-e{epoch}.safetensors`` (model, best model,
Adam moments, RNG state, the table's tensor-valued resume attributes) and ``meta.json``
(counters, history, the run's config, the table's identity and phase state, the
finished phases' results, the state file's name and SHA-256). ``meta.json`` is written
last, atomically: it is the commit record, so a run killed while saving leaves the
previous checkpoint loadable; older state files are removed only after it is written.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from embedlab._io import atomic_write_bytes, atomic_write_text
from embedlab.tables import PhaseState

__all__ = [
    "EpochState",
    "load_run_checkpoint",
    "read_checkpoint_meta",
    "save_run_checkpoint",
    "tensors_bytes",
]

FORMAT = "embedlab-ctr-checkpoint"
VERSION = 2
# version 1 had no table state nor finished phases: still read (it resumes phase 0 only)
READABLE = (1, 2)
META = "meta.json"
# settings that may change between a run and its resumption without changing the result
RESUMABLE_CHANGES = frozenset({"world_size", "timeout_s", "progress", "eval_batch_size"})


@dataclass
class EpochState:
    """Everything a streamed run needs to continue after epoch ``epoch`` of phase ``phase``.

    Attributes:
        phase: 0-based index into ``table.phases``.
        epoch: epochs completed in that phase (1-based count).
        step: optimizer steps taken so far (all phases).
        best_auc: best valid AUC of the phase so far (None without one).
        best_epoch / bad_epochs: early-stopping state.
        stopped: the phase already stopped early (resume goes straight to its end).
        history / train_seconds / eval_seconds / samples: what the phase measured so far.
        model / best: state dicts (``best`` None until a best epoch exists).
        optimizer: Adam's per-parameter state, ``{index: {"step", "exp_avg", ...}}``.
        rng: ``torch.get_rng_state()`` after the epoch (dropout draws).
        table: the table's :meth:`~embedlab.tables.EmbeddingTable.phase_state`.
        finished: the results of phases ``0..phase-1``
            (:meth:`~embedlab.training._phase_resume.PhaseRecord.to_json`).
        source: the state file it was read from ("" before it is saved), for messages.
    """

    phase: int
    epoch: int
    step: int
    best_auc: float | None
    best_epoch: int
    bad_epochs: int
    stopped: bool
    history: list[dict[str, float]]
    train_seconds: float
    eval_seconds: float
    samples: int
    model: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor] | None
    optimizer: dict[int, dict[str, torch.Tensor]]
    rng: torch.Tensor
    extra: dict[str, Any] = field(default_factory=dict)
    table: PhaseState = field(default_factory=PhaseState)
    finished: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""


_SCALARS = (
    "phase",
    "epoch",
    "step",
    "best_auc",
    "best_epoch",
    "bad_epochs",
    "stopped",
    "history",
    "train_seconds",
    "eval_seconds",
    "samples",
)


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` as JSON would give it back (tuples become lists)."""
    out: dict[str, Any] = json.loads(json.dumps(dict(config)))
    return out


def _tensors(state: EpochState) -> dict[str, torch.Tensor]:
    out = {f"model/{k}": v for k, v in state.model.items()}
    if state.best is not None:
        out.update({f"best/{k}": v for k, v in state.best.items()})
    for index, entry in state.optimizer.items():
        out.update({f"optim/{index}/{k}": v for k, v in entry.items()})
    out["rng/torch"] = state.rng
    out.update({f"table/{k}": v for k, v in state.table.tensors.items()})
    return out


def tensors_bytes(tensors: Mapping[str, torch.Tensor]) -> bytes:
    """``tensors`` as safetensors bytes, from own contiguous CPU copies (safetensors refuses
    tensors that share memory, e.g. tied weights)."""
    return save_safetensors({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()})


def save_run_checkpoint(
    folder: str | os.PathLike[str],
    state: EpochState,
    config: Mapping[str, Any],
    identity: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``state``, ``config`` and the table's ``identity`` to ``folder`` atomically;
    returns ``folder/meta.json``."""
    folder = Path(folder)
    name = f"state-p{state.phase}-e{state.epoch:04d}.safetensors"
    blob = tensors_bytes(_tensors(state))
    atomic_write_bytes(folder / name, blob)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "state_file": name,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "bytes": len(blob),
        "config": _plain(config),
        **{k: getattr(state, k) for k in _SCALARS},
        "extra": state.extra,
        "table_identity": _plain(identity or {}),
        "table_state": state.table.meta,
        "finished": state.finished,
    }
    path = atomic_write_text(folder / META, json.dumps(meta, indent=1) + "\n")
    for old in folder.glob("state-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return path


def read_checkpoint_meta(
    folder: str | os.PathLike[str], config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``meta.json`` of the checkpoint in ``folder``, checked against the run's ``config``
    (cheap: the state file is not read).

    Raises:
        FileNotFoundError: no ``meta.json`` (no epoch finished yet).
        ValueError: unreadable JSON, another format or version, or a ``config`` entry that
            differs from the checkpoint's (the first such field is named).
    """
    folder = Path(folder)
    meta_path = folder / META
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"--resume: no checkpoint in {folder} ({META} is missing); a run writes one "
            "after each complete epoch, so run without --resume to start afresh"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"--resume: checkpoint {meta_path} is not readable JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"--resume: {meta_path} is not an embedlab CTR checkpoint")
    if meta.get("version") not in READABLE:
        raise ValueError(
            f"--resume: checkpoint {meta_path} has format version {meta.get('version')!r}, "
            f"this embedlab reads versions {', '.join(map(str, READABLE))}"
        )
    if config is not None:
        _check_config(meta.get("config", {}), _plain(config), folder)
    return meta


def load_run_checkpoint(
    folder: str | os.PathLike[str],
    config: Mapping[str, Any] | None = None,
    identity: Mapping[str, Any] | None = None,
) -> EpochState:
    """Read the checkpoint in ``folder``, checking it against the run's ``config`` and
    the table's ``identity`` (:func:`~embedlab.training._phase_resume.table_identity`).

    Raises:
        FileNotFoundError: no ``meta.json`` (no epoch finished yet) or its state file is gone.
        ValueError: an unreadable or corrupt file (named), or a ``config`` or ``identity``
            entry that differs from the checkpoint's (the first such field is named).
    """
    folder = Path(folder)
    meta = read_checkpoint_meta(folder, config)
    saved_identity = meta.get("table_identity")
    if identity is not None and saved_identity:  # version 1 recorded none
        _check_config(saved_identity, _plain(identity), folder, what="the table's ")
    state_path = folder / str(meta["state_file"])
    if not state_path.is_file():
        raise FileNotFoundError(f"--resume: checkpoint state {state_path} is missing")
    blob = state_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise ValueError(
            f"--resume: checkpoint state {state_path} is corrupt: its SHA-256 differs from "
            f"the one {META} recorded ({len(blob)} bytes, expected {meta['bytes']})"
        )
    try:
        tensors = load_safetensors(blob)
    except Exception as exc:  # safetensors' own error types vary by version
        raise ValueError(f"--resume: checkpoint state {state_path} is unreadable ({exc})") from None
    return _state(meta, tensors, str(state_path))


def _check_config(
    saved: Mapping[str, Any], current: Mapping[str, Any], folder: Path, what: str = ""
) -> None:
    for key in sorted(set(saved) | set(current)):
        if key in RESUMABLE_CHANGES or saved.get(key) == current.get(key):
            continue
        raise ValueError(
            f"--resume: the checkpoint in {folder} was written with {what}{key}="
            f"{saved.get(key)!r}, this run has {what}{key}={current.get(key)!r}; resume with "
            f"the same {key} or write to a new output folder"
        )


def _state(meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor], source: str) -> EpochState:
    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    optimizer: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in part("optim/").items():
        index, _, name = key.partition("/")
        optimizer.setdefault(int(index), {})[name] = value
    best = part("best/")
    return EpochState(
        **{k: meta[k] for k in _SCALARS},
        model=part("model/"),
        best=best or None,
        optimizer=optimizer,
        rng=tensors["rng/torch"],
        extra=dict(meta.get("extra", {})),
        table=PhaseState(dict(meta.get("table_state", {})), part("table/")),
        finished=list(meta.get("finished", [])),
        source=source,
    )
