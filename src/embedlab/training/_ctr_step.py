"""What the in-memory and the streamed CTR trainers share: the objective of one batch, the
loss check, the phase loop of multi-phase tables and batched prediction."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from embedlab.models import CTRModel
from embedlab.tables import EmbeddingTable, PhaseContext
from embedlab.training._ctr_result import TrainResult
from embedlab.training._phase_resume import PhaseRecord

__all__ = [
    "CTRObjective",
    "check_finite_losses",
    "ctr_loss",
    "merge_phases",
    "predict_logits",
    "run_phases",
]

Inputs = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]


def ctr_loss(
    model: CTRModel,
    ids: torch.Tensor,
    labels: torch.Tensor,
    dense: torch.Tensor | None,
    history: torch.Tensor | None,
    *,
    embedding_l2: float,
    scale: float = 1.0,
) -> torch.Tensor:
    """``scale * (BCE + embedding_l2 * mean ||e||^2) + model.regularization()`` of one batch.

    ``scale`` weights the per-row terms of a rank's share of a global batch so that DDP's
    gradient average equals the one-process mean (``rows * world_size / global_rows``);
    at 1.0 the result is bit-identical to the unweighted sum.

    Args:
        ids: ``(batch, n_fields)`` int64.
        labels: ``(batch,)`` float32.
        dense: ``(batch, n_dense)`` float32 or None.
        history: ``(batch, max_len)`` int64 or None.
    """
    if embedding_l2 > 0:
        logits, emb = model.forward_with_embeddings(ids, dense, history)
        penalty: torch.Tensor | None = embedding_l2 * emb.square().sum(dim=-1).mean()
    else:
        logits, penalty = model(ids, dense, history), None
    loss = nn.functional.binary_cross_entropy_with_logits(logits, labels)
    if scale != 1.0:
        loss = loss * scale
    loss = loss + model.regularization()
    if penalty is not None:
        loss = loss + (penalty if scale == 1.0 else penalty * scale)
    return loss


class CTRObjective(nn.Module):
    """:func:`ctr_loss` as a module, so DistributedDataParallel sees the whole loss graph
    (regularisation and the embedding penalty included) inside its ``forward``."""

    def __init__(self, model: CTRModel, *, embedding_l2: float) -> None:
        super().__init__()
        self.model = model
        self.embedding_l2 = embedding_l2

    def forward(
        self,
        ids: torch.Tensor,
        labels: torch.Tensor,
        dense: torch.Tensor | None,
        scale: float,
    ) -> torch.Tensor:
        return ctr_loss(
            self.model, ids, labels, dense, None, embedding_l2=self.embedding_l2, scale=scale
        )


def check_finite_losses(
    losses: torch.Tensor, lo: int, hi: int, epoch: int, global_step: int, where: str = ""
) -> None:
    """Raise ``RuntimeError`` naming the first non-finite entry of ``losses[lo:hi]``.

    ``global_step`` is the step of entry ``hi - 1``; ``where`` is appended to the place.
    """
    bad = ~torch.isfinite(losses[lo:hi])
    if bool(bad.any()):
        first = lo + int(torch.nonzero(bad)[0])
        at_step = global_step - (hi - 1 - first)
        value = float(losses[first])
        raise RuntimeError(
            f"training loss is {value} at epoch {epoch}, step {at_step} "
            f"(batch {first + 1} of the epoch{where}); lower lr or check the table's numerics"
        )


def predict_logits(model: CTRModel, batches: Iterable[Inputs]) -> torch.Tensor:
    """Logits ``(n,)`` of ``model`` over ``(ids, dense, history)`` batches (eval, no grad)."""
    was_training = model.training
    model.eval()
    out: list[torch.Tensor] = []
    try:
        with torch.no_grad():
            for ids, dense, history in batches:
                out.append(model(ids, dense, history))
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def sigmoid64(logits: torch.Tensor) -> np.ndarray:
    """Click probabilities ``(n,)`` float64 from logits, computed in float64."""
    x = logits.double().cpu().numpy()
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


PhaseFit = Callable[[int, str, int], tuple[TrainResult, int]]


def run_phases(
    table: EmbeddingTable,
    ctx: PhaseContext,
    fit_phase: PhaseFit,
    *,
    finished: list[PhaseRecord] | None = None,
    restore: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train every phase of ``table`` and merge the results.

    ``fit_phase(index, name, steps_so_far) -> (result, samples)`` trains one phase;
    ``table.start_phase`` / ``end_phase`` run around it and their time is charged to
    ``train_seconds`` (see :class:`TrainResult` for how phases are merged).

    Args:
        finished: records of phases already done (a resumed run: they are skipped, no
            hooks run); every phase that ends is appended, so a checkpoint writer that
            holds this list sees the finished phases.
        restore: called with the index of the first phase to run before its
            ``start_phase`` when ``finished`` is not empty (rebuilds the table's structure).
    """
    records = [] if finished is None else finished
    first = len(records)
    for index, phase in enumerate(table.phases):
        if index < first:
            continue
        start = time.perf_counter()
        if index == first and first > 0 and restore is not None:
            restore(index)
        table.start_phase(phase, ctx)
        hook_seconds = time.perf_counter() - start
        part, part_samples = fit_phase(index, phase, records[-1].result.steps if records else 0)
        start = time.perf_counter()
        table.end_phase(phase, ctx)
        hook_seconds += time.perf_counter() - start
        for record in part.history:
            record["phase"] = float(index)
        records.append(PhaseRecord(part, part_samples, hook_seconds))
    return merge_phases(table.phases, records)


def merge_phases(names: Sequence[str], records: Sequence[PhaseRecord]) -> TrainResult:
    """One :class:`TrainResult` from the records of phases ``names`` (in order)."""
    total = TrainResult(
        history=[],
        best_epoch=0,
        best_valid_auc=None,
        train_seconds=0.0,
        samples_per_second=0.0,
        epochs_run=0,
    )
    samples = 0
    for phase, rec in zip(names, records, strict=True):
        part = rec.result
        samples += rec.samples
        total.history.extend(part.history)
        total.epochs_run += part.epochs_run
        total.steps = part.steps
        total.train_seconds += part.train_seconds + rec.hook_seconds
        total.eval_seconds += part.eval_seconds
        total.best_epoch, total.best_valid_auc = part.best_epoch, part.best_valid_auc
        total.stop_reason = part.stop_reason
        total.phases.append(
            {
                "name": phase,
                "epochs_run": part.epochs_run,
                "best_epoch": part.best_epoch,
                "best_valid_auc": part.best_valid_auc,
                "train_seconds": part.train_seconds,
                "hook_seconds": rec.hook_seconds,
            }
        )
    if total.train_seconds > 0:
        total.samples_per_second = samples / total.train_seconds
    return total
