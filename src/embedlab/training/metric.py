"""Training of embedding encoders with a metric / contrastive loss.

:class:`MetricTrainer` walks class-balanced (P classes x K samples) or random batches of a
:class:`~embedlab.data.LabeledData`, feeds the loss what its ``input_kind`` asks for, keeps
the weights of the epoch with the best validation precision@1 (ties, common once it
saturates, broken by MAP@R; leave-one-out retrieval),
and saves them as a checkpoint without pickle (``torch.save`` of state dicts, read back with
``torch.load(weights_only=True)``), atomically.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rich.progress import Progress
from torch import nn

from embedlab._training_common import forked_rng, progress_bar
from embedlab._validation import (
    check_bool,
    check_choice,
    check_int,
    check_min_classes,
    check_optional_int,
    check_positive_float,
)
from embedlab.data.labeled import LabeledData
from embedlab.evaluate import retrieval_metrics
from embedlab.training._checkpoint import load_checkpoint, save_state
from embedlab.training._loss_inputs import LossFn, as_loss_module, loss_input_kind
from embedlab.training.batches import augment_batch, balanced_batches, embed

__all__ = [
    "LossFn",
    "MetricTrainResult",
    "MetricTrainer",
    "augment_batch",
    "balanced_batches",
    "embed",
    "load_checkpoint",
    "loss_input_kind",
]

Sampler = Literal["balanced", "random"]


@dataclass
class MetricTrainResult:
    """What :meth:`MetricTrainer.fit` measured.

    Attributes:
        history: one dict per epoch: ``epoch`` (1-based), ``train_loss`` (mean over steps),
            ``seconds`` (training time of the epoch) and, with valid data,
            ``valid_precision_at_1`` and ``valid_map_at_r`` (leave-one-out retrieval).
        best_epoch: the epoch whose weights the encoder (and loss) hold after ``fit``.
        best_valid_precision_at_1: its validation precision@1 (None without valid data).
        train_seconds: time in the training loop only (no evaluation).
        samples_per_second: training inputs per second of ``train_seconds`` (an input
            counts once however many views of it the loss sees).
        epochs_run: epochs trained.
        steps: optimizer steps taken.
    """

    history: list[dict[str, float]]
    best_epoch: int
    best_valid_precision_at_1: float | None
    train_seconds: float
    samples_per_second: float
    epochs_run: int
    steps: int

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (a deep copy)."""
        return asdict(self)


class MetricTrainer:
    """Trains an encoder ``(batch, ...) -> (batch, dim)`` with a metric-learning loss and Adam.

    What the loss is given depends on its ``input_kind``:

    - ``"labels"``: ``loss(encoder(view), labels)`` on one augmented view per input;
    - ``"views"``: ``loss(stack([encoder(view_1), ..., encoder(view_V)], 1), labels)``,
      ``(batch, n_views, dim)``, each view an independent augmentation;
    - ``"pairs"``: ``loss(encoder(view_1), encoder(view_2))``: row ``i`` of both is a positive
      pair (two augmentations of one input, the self-supervised two-tower setting);
    - ``"layers"``: ``loss(encoder.forward_layers(view), labels)`` (a list of ``(batch, dim)``),
      for layer-wise losses; the encoder must have ``forward_layers``.

    ``loss`` may also be any callable ``(embeddings, labels) -> scalar`` that is not a module
    (e.g. another library's loss and miner combined in a closure); it is fed as ``"labels"``
    and has no trainable parameters of its own (pass a module for a loss that has some).

    Augmentation (:func:`augment_batch`) is random shifts plus Gaussian noise; pass
    ``augment=False`` to feed the raw inputs (then every view of an input is identical).
    Everything random draws from generators seeded by ``seed`` inside a forked RNG, so the
    same seed gives the same history and the caller's global RNG is untouched.

    Args:
        epochs: epochs to train (the best one on valid data is kept).
        batch_size: inputs per step.
        lr: Adam learning rate.
        weight_decay: Adam's L2 on encoder and loss parameters.
        seed: sampling, augmentation and the loss's own randomness.
        sampler: ``"balanced"`` (P classes x K samples, see :func:`balanced_batches`) or
            ``"random"`` (a shuffled pass over the data).
        samples_per_class: ``K`` of the balanced sampler.
        n_views: views per input for ``"views"`` losses (``"pairs"`` always uses 2).
        augment: random shifts and noise on every view.
        max_shift: pixels of shift; default ``round(side / 14)`` (2 for MNIST, 1 for 8x8).
        noise: std of the Gaussian noise added to each view.
        progress: show a rich progress bar.
        device: e.g. ``"cpu"`` or ``"cuda"``.
        eval_batch_size: inputs per batch when embedding for validation.

    Example:
        >>> from embedlab.data import load_digits
        >>> from embedlab.training.encoders import MLPEncoder
        >>> data = load_digits().select_classes(range(5))
        >>> from embedlab.losses import make_loss
        >>> loss = make_loss("supcon", dim=32, n_classes=5)
        >>> trainer = MetricTrainer(epochs=1, progress=False)
        >>> trainer.fit(MLPEncoder(32), loss, data).epochs_run
        1
    """

    def __init__(
        self,
        *,
        epochs: int = 10,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        seed: int = 0,
        sampler: Sampler = "balanced",
        samples_per_class: int = 4,
        n_views: int = 2,
        augment: bool = True,
        max_shift: int | None = None,
        noise: float = 0.05,
        progress: bool = True,
        device: str | torch.device = "cpu",
        eval_batch_size: int = 1024,
    ) -> None:
        self.epochs = check_int("epochs", epochs, min_value=1)
        self.batch_size = check_int("batch_size", batch_size, min_value=2)
        self.lr = check_positive_float("lr", lr)
        self.weight_decay = check_positive_float("weight_decay", weight_decay, strict=False)
        self.seed = check_int("seed", seed, min_value=0)
        self.sampler = check_choice("sampler", sampler, ("balanced", "random"))
        self.samples_per_class = check_int("samples_per_class", samples_per_class, min_value=2)
        self.n_views = check_int("n_views", n_views, min_value=2)
        self.augment = check_bool("augment", augment)
        self.max_shift = check_optional_int("max_shift", max_shift, min_value=0)
        self.noise = check_positive_float("noise", noise, strict=False)
        self.progress = check_bool("progress", progress)
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"device must name a torch device like 'cpu' or 'cuda', got {device!r}"
            ) from None
        self.eval_batch_size = check_int("eval_batch_size", eval_batch_size, min_value=1)
        self.best_state_: dict[str, Any] | None = None

    # --- public API ----------------------------------------------------------
    def fit(
        self,
        encoder: nn.Module,
        loss: nn.Module | LossFn,
        train: LabeledData,
        valid: LabeledData | None = None,
    ) -> MetricTrainResult:
        """Train ``encoder`` (and the loss's parameters) in place; keep the best valid epoch."""
        loss = as_loss_module(loss)
        kind = self._check_fit(encoder, loss, train, valid)
        encoder.to(self.device)
        loss.to(self.device)
        params = [p for m in (encoder, loss) for p in m.parameters() if p.requires_grad]
        if not params:
            raise ValueError("encoder must have trainable parameters, got none")
        optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        x_all = torch.from_numpy(train.x).to(self.device)
        y_all = torch.from_numpy(train.y).to(self.device)
        rng = np.random.default_rng(self.seed)
        aug_gen = torch.Generator().manual_seed(self.seed + 1)
        side = int(train.x.shape[-1]) if train.x.ndim == 4 else 0
        shift = self.max_shift if self.max_shift is not None else round(side / 14)

        history: list[dict[str, float]] = []
        best_p1, best_epoch = -math.inf, 0
        # precision@1 saturates early on seen classes; MAP@R breaks its ties
        best_key = (-math.inf, -math.inf)
        self.best_state_ = None
        train_seconds = 0.0
        samples = steps = 0
        with self._forked_rng(), self._progress() as bar, _flush_denormal(self.device):
            torch.manual_seed(self.seed)
            for epoch in range(1, self.epochs + 1):
                batches = self._batches(train.y, rng)
                task = bar.add_task(f"epoch {epoch}/{self.epochs}", total=len(batches), info="")
                set_epoch = getattr(loss, "set_epoch", None)  # curricula (C²LR) switch here
                if callable(set_epoch):
                    set_epoch(epoch, self.epochs)
                encoder.train()
                loss.train()
                start = time.perf_counter()
                losses = torch.zeros(len(batches), device=self.device)
                for i, idx_np in enumerate(batches):
                    idx = torch.from_numpy(idx_np).to(self.device)
                    x, y = x_all[idx], y_all[idx]
                    value = self._loss(encoder, loss, kind, x, y, aug_gen, shift)
                    optimizer.zero_grad(set_to_none=True)
                    value.backward()  # type: ignore[no-untyped-call]
                    optimizer.step()
                    losses[i] = value.detach()
                    steps += 1
                    samples += len(idx_np)
                    if (i + 1) % 20 == 0 or i == len(batches) - 1:
                        self._check_finite(losses[: i + 1], epoch, steps)
                        bar.update(task, completed=i + 1, info=f"loss {float(losses[i]):.4f}")
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                seconds = time.perf_counter() - start
                train_seconds += seconds
                record = {
                    "epoch": float(epoch),
                    "train_loss": float(losses.mean()),
                    "seconds": seconds,
                }
                if valid is not None:
                    m = self._valid_metrics(encoder, valid)
                    record["valid_precision_at_1"] = m["precision_at_1"]
                    record["valid_map_at_r"] = m["map_at_r"]
                    info = f"loss {record['train_loss']:.4f}  p@1 {m['precision_at_1']:.4f}"
                    bar.update(task, info=info)
                    key = (m["precision_at_1"], m["map_at_r"])
                    if key > best_key:
                        best_key, best_epoch = key, epoch
                        best_p1 = m["precision_at_1"]
                        self.best_state_ = self._snapshot(encoder, loss, epoch, best_p1)
                else:
                    best_epoch = epoch
                history.append(record)
            if self.best_state_ is None:
                self.best_state_ = self._snapshot(encoder, loss, best_epoch, None)
            elif best_epoch != self.epochs:
                encoder.load_state_dict(self.best_state_["encoder"])
                loss.load_state_dict(self.best_state_["loss"])
        return MetricTrainResult(
            history=history,
            best_epoch=best_epoch,
            best_valid_precision_at_1=None if valid is None else best_p1,
            train_seconds=train_seconds,
            samples_per_second=samples / train_seconds if train_seconds > 0 else 0.0,
            epochs_run=self.epochs,
            steps=steps,
        )

    def embed(self, encoder: nn.Module, data: LabeledData | np.ndarray) -> np.ndarray:
        """``(n, dim)`` embeddings of ``data`` (eval mode, no grad)."""
        x = data.x if isinstance(data, LabeledData) else data
        return embed(encoder, x, batch_size=self.eval_batch_size, device=self.device)

    def save_checkpoint(self, path: str | os.PathLike[str]) -> Path:
        """Save the kept epoch's encoder and loss weights to ``path`` (atomic, no pickle)."""
        if self.best_state_ is None:
            raise RuntimeError("no checkpoint to save: call fit() first")
        return save_state(path, self.best_state_)

    # --- internals -------------------------------------------------------------
    def _loss(
        self,
        encoder: nn.Module,
        loss: nn.Module,
        kind: str,
        x: torch.Tensor,
        y: torch.Tensor,
        gen: torch.Generator,
        shift: int,
    ) -> torch.Tensor:
        def view() -> torch.Tensor:
            if not self.augment:
                return x
            return augment_batch(x, gen, max_shift=shift, noise=self.noise)

        out: torch.Tensor
        if kind == "curriculum":
            kind = str(loss.phase_input_kind())  # type: ignore[operator]
        if kind == "labels":
            out = loss(encoder(view()), y)
        elif kind == "views":
            views = torch.stack([view() for _ in range(self.n_views)], dim=1)  # (b, V, ...)
            emb = encoder(views.flatten(0, 1))  # (b * V, dim)
            out = loss(emb.reshape(x.shape[0], self.n_views, -1), y)
        elif kind == "pairs":
            both = encoder(torch.cat([view(), view()]))  # (2b, dim)
            out = loss(both[: x.shape[0]], both[x.shape[0] :])
        elif kind == "mix":
            from embedlab.losses.mimix import mix_hidden

            mixed, lam, perm = mix_hidden(view(), generator=gen)
            both = encoder(torch.cat([view(), mixed]))  # (2b, dim): clean, then mixed
            out = loss(both[: x.shape[0]], both[x.shape[0] :], lam=lam, perm=perm)
        else:
            out = loss(encoder.forward_layers(view()), y)  # type: ignore[operator]
        return out

    def _batches(self, labels: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        if self.sampler == "balanced":
            return balanced_batches(labels, self.batch_size, self.samples_per_class, rng)
        perm = rng.permutation(len(labels))
        return [perm[lo : lo + self.batch_size] for lo in range(0, len(perm), self.batch_size)]

    def _valid_metrics(self, encoder: nn.Module, valid: LabeledData) -> dict[str, float]:
        emb = self.embed(encoder, valid)
        return retrieval_metrics(emb, valid.y, k=(1,))

    @staticmethod
    def _snapshot(
        encoder: nn.Module, loss: nn.Module, epoch: int, p1: float | None
    ) -> dict[str, Any]:
        state: dict[str, Any] = {
            "encoder": copy.deepcopy(encoder.state_dict()),
            "loss": copy.deepcopy(loss.state_dict()),
            "epoch": epoch,
        }
        if p1 is not None:
            state["valid_precision_at_1"] = float(p1)
        return state

    @staticmethod
    def _check_finite(losses: torch.Tensor, epoch: int, steps: int) -> None:
        bad = ~torch.isfinite(losses)
        if bool(bad.any()):
            first = int(torch.nonzero(bad)[0])
            raise RuntimeError(
                f"training loss is {float(losses[first])} at epoch {epoch}, batch {first + 1} "
                f"(step <= {steps}); lower lr or check the loss's numerics"
            )

    def _check_fit(
        self,
        encoder: nn.Module,
        loss: nn.Module,
        train: LabeledData,
        valid: LabeledData | None,
    ) -> str:
        if not isinstance(encoder, nn.Module):
            raise TypeError(f"encoder must be a torch.nn.Module, got {type(encoder).__name__}")
        kind = loss_input_kind(loss)
        if kind == "layers" and not hasattr(encoder, "forward_layers"):
            raise ValueError(
                f"loss {type(loss).__name__} needs an encoder with forward_layers, "
                f"got {type(encoder).__name__}"
            )
        for name, data in (("train", train), ("valid", valid)):
            if data is not None and not isinstance(data, LabeledData):
                raise TypeError(f"{name} must be a LabeledData, got {type(data).__name__}")
        check_min_classes("train labels", train.y)
        if valid is not None and valid.x.shape[1:] != train.x.shape[1:]:
            raise ValueError(
                f"valid inputs must have the train inputs' shape {train.x.shape[1:]}, "
                f"got {valid.x.shape[1:]}"
            )
        return kind

    def _forked_rng(self) -> AbstractContextManager[Any]:
        return forked_rng(self.device)

    def _progress(self) -> AbstractContextManager[Progress]:
        return progress_bar(self.progress)


@contextmanager
def _flush_denormal(device: torch.device) -> Iterator[None]:
    """Denormal floats (tiny Adam moments, underflowing softmax tails) slow CPU math ~10x;
    flush them to zero while training, then switch flushing off again."""
    flush = device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flush:
            torch.set_flush_denormal(False)
