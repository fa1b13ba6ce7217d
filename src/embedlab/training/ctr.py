"""Training and evaluation of CTR models: Adam, BCE, early stopping on valid AUC."""

from __future__ import annotations

import copy
import math
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

from embedlab._training_common import forked_rng, progress_bar
from embedlab._validation import (
    check_bool,
    check_int,
    check_optional_int,
    check_positive_float,
)
from embedlab.data import CTRDataset
from embedlab.models import CTRModel
from embedlab.tables import PhaseContext
from embedlab.training._ctr_result import StopReason, TrainResult
from embedlab.training._ctr_step import (
    check_finite_losses,
    ctr_loss,
    predict_logits,
    run_phases,
    sigmoid64,
)
from embedlab.training.metrics import auc_score, log_loss

__all__ = ["CTRTrainer", "TrainResult"]


@dataclass
class _Tensors:
    ids: torch.Tensor  # (n, n_fields) int64
    labels: torch.Tensor  # (n,) float32
    dense: torch.Tensor | None  # (n, n_dense) float32
    history: torch.Tensor | None  # (n, max_len) int64, -1 pads


class CTRTrainer:
    """Trains a :class:`~embedlab.models.CTRModel` with Adam and binary cross-entropy.

    Each epoch shuffles the training rows with a seeded generator and walks
    them in batches sliced from tensors converted once (no DataLoader, no
    per-row Python). After every optimizer step it calls
    ``model.table.on_step(step)`` (``step`` = steps taken so far, 1 for the
    first); after every epoch ``model.table.on_epoch_end(epoch)`` (1-based),
    then evaluates the valid data. Training stops after ``patience`` epochs
    without a better valid AUC, and the best epoch's weights (an in-memory
    copy of the state dict) are restored at the end.

    The loss is ``BCE + model.regularization()`` plus, when
    ``embedding_l2 > 0``, ``embedding_l2 * mean_{rows, fields} ||e||^2`` over the
    looked-up embeddings (works for every table, like FuxiCTR's
    ``embedding_regularizer``). ``weight_decay`` is Adam's L2 on the model's own
    dense parameters only (FuxiCTR's ``net_regularizer``); the table gets none.

    Losses stay on the device and are checked for NaN every ``log_every``
    steps and at the end of each epoch, so a GPU is not synchronised per step.
    Dropout draws from a generator seeded by ``seed`` inside a forked RNG: the
    same seed gives the same history, and the caller's global RNG is untouched.

    Args:
        epochs: maximum number of epochs.
        batch_size: training rows per step.
        lr: Adam learning rate.
        weight_decay: L2 on the non-table parameters.
        embedding_l2: weight of the penalty on looked-up embeddings.
        patience: epochs without improvement before stopping; None never stops early.
        seed: shuffling and dropout.
        device: where to train, e.g. ``"cpu"`` or ``"cuda"``.
        progress: show a rich progress bar per epoch.
        eval_batch_size: rows per batch when predicting.
        max_train_seconds: stop once the training loop has run this long (None: no limit).
        log_every: steps between loss checks (NaN) and progress-bar updates.

    Example:
        >>> from embedlab.data import make_ctr
        >>> from embedlab.models import make_model
        >>> from embedlab.tables import make_table
        >>> data = make_ctr(4000, (50, 20, 5), seed=0).split(seed=0)
        >>> model = make_model("fm", make_table("full", data.fields, dim=8))
        >>> result = CTRTrainer(epochs=2, progress=False).fit(model, data.train, data.valid)
        >>> result.epochs_run, sorted(CTRTrainer(progress=False).evaluate(model, data.test))
        (2, ['auc', 'logloss'])
    """

    def __init__(
        self,
        *,
        epochs: int = 10,
        batch_size: int = 2048,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        embedding_l2: float = 0.0,
        patience: int | None = 2,
        seed: int = 0,
        device: str | torch.device = "cpu",
        progress: bool = True,
        eval_batch_size: int = 65536,
        max_train_seconds: float | None = None,
        log_every: int = 50,
    ) -> None:
        self.epochs = check_int("epochs", epochs, min_value=1)
        self.batch_size = check_int("batch_size", batch_size, min_value=1)
        self.lr = check_positive_float("lr", lr)
        self.weight_decay = check_positive_float("weight_decay", weight_decay, strict=False)
        self.embedding_l2 = check_positive_float("embedding_l2", embedding_l2, strict=False)
        self.patience = check_optional_int("patience", patience, min_value=1)
        self.seed = check_int("seed", seed, min_value=0)
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"device must name a torch device like 'cpu' or 'cuda', got {device!r}"
            ) from None
        self.progress = check_bool("progress", progress)
        self.eval_batch_size = check_int("eval_batch_size", eval_batch_size, min_value=1)
        self.max_train_seconds = (
            None
            if max_train_seconds is None
            else check_positive_float("max_train_seconds", max_train_seconds)
        )
        self.log_every = check_int("log_every", log_every, min_value=1)

    # --- public API ----------------------------------------------------------
    def fit(
        self, model: CTRModel, train: CTRDataset, valid: CTRDataset | None = None
    ) -> TrainResult:
        """Train ``model`` in place on ``train``; early-stop and select the epoch on ``valid``.

        A table with several :attr:`~embedlab.tables.EmbeddingTable.phases` (e.g. a search
        then a retraining) is trained once per phase, each with a fresh optimizer,
        early stopping and best-epoch restore; ``table.start_phase`` / ``end_phase``
        run around each and their time is counted in ``train_seconds``.
        """
        self._check_data(model, train, "train")
        if valid is not None:
            self._check_data(model, valid, "valid")
        model.to(self.device)
        data = self._tensors(train)
        valid_data = None if valid is None else self._tensors(valid)
        table = model.table

        def evaluate() -> float:
            if valid_data is None:
                raise ValueError(
                    f"valid data must be given to train table {table.name!r}: "
                    "its search scores candidates on validation AUC"
                )
            return self._evaluate_tensors(model, valid_data)["auc"]

        def valid_loss(rows: torch.Tensor) -> torch.Tensor:
            assert valid_data is not None  # only offered with validation data
            rows = rows.to(self.device)
            dense = None if valid_data.dense is None else valid_data.dense[rows]
            hist = None if valid_data.history is None else valid_data.history[rows]
            return ctr_loss(
                model,
                valid_data.ids[rows],
                valid_data.labels[rows],
                dense,
                hist,
                embedding_l2=self.embedding_l2,
            )

        ctx = PhaseContext(
            train=train,
            valid=valid,
            evaluate=evaluate,
            steps_per_epoch=math.ceil(len(train) / self.batch_size),
            max_epochs=self.epochs,
            seed=self.seed,
            valid_loss=None if valid_data is None else valid_loss,
        )
        with self._forked_rng(), self._progress() as bar:
            torch.manual_seed(self.seed)

            def fit_phase(index: int, phase: str, steps: int) -> tuple[TrainResult, int]:
                return self._fit_phase(model, data, valid_data, bar, first_step=steps, label=phase)

            return run_phases(table, ctx, fit_phase)

    def _fit_phase(
        self,
        model: CTRModel,
        data: _Tensors,
        valid_data: _Tensors | None,
        bar: Progress,
        *,
        first_step: int,
        label: str,
    ) -> tuple[TrainResult, int]:
        """One training run (the whole of ``fit`` for a single-phase table)."""
        optimizer = self._optimizer(model)
        n, bs = data.ids.shape[0], self.batch_size
        n_steps = math.ceil(n / bs)
        sizes = torch.full((n_steps,), float(bs), device=self.device)
        sizes[-1] = n - bs * (n_steps - 1)
        losses = torch.zeros(n_steps, device=self.device)
        shuffle = torch.Generator().manual_seed(self.seed)
        prefix = "" if label == "train" else f"{label} "

        history: list[dict[str, float]] = []
        best_auc, best_epoch, best_state, bad_epochs = -math.inf, 0, None, 0
        train_seconds = eval_seconds = 0.0
        samples = epochs_run = 0
        step = first_step
        stop_reason: StopReason = "max_epochs"
        for epoch in range(1, self.epochs + 1):
            epochs_run = epoch
            task = bar.add_task(f"{prefix}epoch {epoch}/{self.epochs}", total=n_steps, info="")
            model.train()
            start = time.perf_counter()
            perm = torch.randperm(n, generator=shuffle).to(self.device)
            ids, labels = data.ids[perm], data.labels[perm]
            dense = None if data.dense is None else data.dense[perm]
            history_ids = None if data.history is None else data.history[perm]
            checked = 0
            done = n_steps
            for i in range(n_steps):
                lo, hi = i * bs, min((i + 1) * bs, n)
                loss = self._step(
                    model,
                    optimizer,
                    ids[lo:hi],
                    labels[lo:hi],
                    None if dense is None else dense[lo:hi],
                    None if history_ids is None else history_ids[lo:hi],
                )
                step += 1
                model.table.on_step(step)
                losses[i] = loss
                samples += hi - lo
                last = i == n_steps - 1
                if (i + 1) % self.log_every == 0 or last:
                    check_finite_losses(losses, checked, i + 1, epoch, step)
                    checked = i + 1
                    bar.update(task, completed=i + 1, info=f"loss {float(losses[i]):.4f}")
                limit = self.max_train_seconds
                if limit is not None and train_seconds + time.perf_counter() - start >= limit:
                    if not last:
                        check_finite_losses(losses, checked, i + 1, epoch, step)
                    stop_reason, done = "time_limit", i + 1
                    break
            model.table.on_epoch_end(epoch)
            self._synchronize()
            epoch_seconds = time.perf_counter() - start
            train_seconds += epoch_seconds
            train_loss = float((losses[:done] * sizes[:done]).sum()) / float(sizes[:done].sum())
            record = {"epoch": float(epoch), "train_loss": train_loss, "seconds": epoch_seconds}

            start = time.perf_counter()
            if valid_data is not None:
                metrics = self._evaluate_tensors(model, valid_data)
                record["valid_auc"], record["valid_logloss"] = metrics["auc"], metrics["logloss"]
                if metrics["auc"] > best_auc:
                    best_auc, best_epoch, bad_epochs = metrics["auc"], epoch, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    bad_epochs += 1
                bar.update(task, info=f"loss {train_loss:.4f}  valid auc {metrics['auc']:.4f}")
            else:
                best_epoch = epoch
                bar.update(task, info=f"loss {train_loss:.4f}")
            record["eval_seconds"] = time.perf_counter() - start
            eval_seconds += record["eval_seconds"]
            history.append(record)
            if stop_reason == "time_limit":
                break
            if self.patience is not None and bad_epochs >= self.patience:
                stop_reason = "early_stopping"
                break
        if best_state is not None and best_epoch != epochs_run:
            model.load_state_dict(best_state)
        result = TrainResult(
            history=history,
            best_epoch=best_epoch,
            best_valid_auc=None if valid_data is None else best_auc,
            train_seconds=train_seconds,
            samples_per_second=samples / train_seconds if train_seconds > 0 else 0.0,
            epochs_run=epochs_run,
            eval_seconds=eval_seconds,
            steps=step,
            stop_reason=stop_reason,
        )
        return result, samples

    def evaluate(self, model: CTRModel, data: CTRDataset) -> dict[str, float]:
        """``{"auc": ..., "logloss": ...}`` of ``model`` on ``data`` (eval mode, no grad)."""
        self._check_data(model, data, "data")
        model.to(self.device)
        return self._evaluate_tensors(model, self._tensors(data))

    def predict(self, model: CTRModel, data: CTRDataset) -> np.ndarray:
        """Click probabilities ``(n,)`` float64 for the rows of ``data``."""
        self._check_data(model, data, "data")
        model.to(self.device)
        return self._predict_tensors(model, self._tensors(data))

    # --- internals -------------------------------------------------------------
    def _step(
        self,
        model: CTRModel,
        optimizer: torch.optim.Optimizer,
        ids: torch.Tensor,
        labels: torch.Tensor,
        dense: torch.Tensor | None,
        history: torch.Tensor | None,
    ) -> torch.Tensor:
        loss = ctr_loss(model, ids, labels, dense, history, embedding_l2=self.embedding_l2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        return loss.detach()

    def _optimizer(self, model: CTRModel) -> torch.optim.Adam:
        table_ids = {id(p) for p in model.table.parameters()}
        table = [p for p in model.parameters() if p.requires_grad and id(p) in table_ids]
        own = [p for p in model.parameters() if p.requires_grad and id(p) not in table_ids]
        groups: list[dict[str, Any]] = []
        if table:
            groups.append({"params": table, "weight_decay": 0.0})
        if own:
            groups.append({"params": own, "weight_decay": self.weight_decay})
        if not groups:
            raise ValueError("model must have trainable parameters, got none")
        return torch.optim.Adam(groups, lr=self.lr)

    def _evaluate_tensors(self, model: CTRModel, data: _Tensors) -> dict[str, float]:
        probs = self._predict_tensors(model, data)
        labels = data.labels.cpu().numpy()
        return {"auc": auc_score(labels, probs), "logloss": log_loss(labels, probs)}

    def _predict_tensors(self, model: CTRModel, data: _Tensors) -> np.ndarray:
        n, bs = data.ids.shape[0], self.eval_batch_size
        batches = (
            (
                data.ids[lo : lo + bs],
                None if data.dense is None else data.dense[lo : lo + bs],
                None if data.history is None else data.history[lo : lo + bs],
            )
            for lo in range(0, n, bs)
        )
        return sigmoid64(predict_logits(model, batches))

    def _tensors(self, data: CTRDataset) -> _Tensors:
        dense = None if data.dense is None else torch.from_numpy(data.dense).to(self.device)
        hist = None if data.history is None else torch.from_numpy(data.history).to(self.device)
        return _Tensors(
            ids=torch.from_numpy(data.ids).to(self.device),
            labels=torch.from_numpy(data.labels).to(self.device),
            dense=dense,
            history=hist,
        )

    @staticmethod
    def _check_data(model: CTRModel, data: CTRDataset, name: str) -> None:
        if not isinstance(model, CTRModel):
            raise TypeError(f"model must be a CTRModel, got {type(model).__name__}")
        if not isinstance(data, CTRDataset):
            raise TypeError(f"{name} must be a CTRDataset, got {type(data).__name__}")
        if data.n_fields != model.table.n_fields:
            raise ValueError(
                f"{name} must have the model table's {model.table.n_fields} fields, "
                f"got {data.n_fields}"
            )
        if (data.history is None) != (model.history_field is None):
            raise ValueError(
                f"{name} must {'' if model.history_field is not None else 'not '}carry a "
                f"behaviour history for a model built with history_field={model.history_field}"
            )
        if data.history is not None and data.history_side_fields != model.history_side_fields:
            raise ValueError(
                f"{name} must have history_side_fields={model.history_side_fields} (as the "
                f"model was built), got {data.history_side_fields}"
            )
        n_dense = 0 if data.dense is None else int(data.dense.shape[1])
        if n_dense != model.n_dense:
            raise ValueError(
                f"{name} must have n_dense={model.n_dense} numeric features "
                f"(as the model was built), got {n_dense}"
            )

    def _synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _forked_rng(self) -> AbstractContextManager[Any]:
        return forked_rng(self.device)

    def _progress(self) -> AbstractContextManager[Progress]:
        return progress_bar(self.progress)
