"""What :meth:`CTRTrainer.fit` returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["StopReason", "TrainResult"]

StopReason = Literal["max_epochs", "early_stopping", "time_limit"]


@dataclass
class TrainResult:
    """What :meth:`CTRTrainer.fit` measured.

    Attributes:
        history: one dict per epoch: ``epoch`` (1-based), ``train_loss`` (mean training
            objective: BCE + regularisation), ``seconds`` (training time of the epoch),
            ``eval_seconds``, and ``valid_auc`` / ``valid_logloss`` when valid data was given.
        best_epoch: the epoch whose weights the model holds after ``fit`` (1-based).
        best_valid_auc: its validation AUC (None without valid data).
        train_seconds: time in the training loop only (no evaluation).
        samples_per_second: training samples processed / ``train_seconds``.
        epochs_run: number of epochs started (the last may be partial on a time limit).
        eval_seconds: time spent evaluating and checkpointing.
        steps: optimizer steps taken.
        stop_reason: ``"max_epochs"``, ``"early_stopping"`` or ``"time_limit"`` (of the
            last phase).
        phases: one dict per training phase of the table (a single ``"train"`` phase for
            most): ``name``, ``epochs_run``, ``best_epoch``, ``best_valid_auc``,
            ``train_seconds`` and ``hook_seconds`` (the table's own work between
            phases, e.g. a search). ``history``, ``epochs_run``, ``steps`` and
            ``train_seconds`` cover all phases (``train_seconds`` includes the hook
            time, so a multi-phase method is charged for everything it does);
            ``best_epoch`` / ``best_valid_auc`` are the last phase's. History records
            carry their 0-based ``phase`` index.
    """

    history: list[dict[str, float]]
    best_epoch: int
    best_valid_auc: float | None
    train_seconds: float
    samples_per_second: float
    epochs_run: int
    eval_seconds: float = 0.0
    steps: int = 0
    stop_reason: StopReason = "max_epochs"
    phases: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)
