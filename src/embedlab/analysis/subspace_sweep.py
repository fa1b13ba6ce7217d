"""Training in random subspaces and the d_int90 sweep (Li et al., ICLR 2018; SAID).

See :mod:`embedlab.analysis.subspace` for the model; this module trains it and sweeps ``d``.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from embedlab._training_common import progress_bar
from embedlab._validation import (
    check_bool,
    check_choice,
    check_class_ids,
    check_finite,
    check_float_in_range,
    check_int,
    check_int_in_range,
    check_nonempty,
    check_positive_float,
)
from embedlab.analysis._projections import (
    PROJECTIONS,
    ProjectionKind,
)
from embedlab.analysis.subspace import SubspaceModel
from embedlab.data.labeled import LabeledData

__all__ = ["SweepResult", "intrinsic_dimension_sweep", "train_full", "train_subspace"]

Data = LabeledData | tuple[Any, Any]
ModuleSource = nn.Module | Callable[[], nn.Module]


@dataclass(frozen=True)
class SweepResult:
    """Validation accuracy of subspace training for each ``d``, and the d_int90 it implies.

    Attributes:
        dims: the subspace dimensions tried, ascending.
        accuracies: validation accuracy for each of ``dims``.
        baseline: the full model's validation accuracy.
        threshold: fraction of ``baseline`` that defines ``d_int90`` (0.9 in Li et al.).
        d_int90: the smallest ``d`` in ``dims`` reaching ``threshold * baseline``; ``None`` if
            none does.
        n_params: D, the parameter count of the model.
        projection: the projection used.
        seconds: training + evaluation time for each of ``dims``.
        baseline_seconds: time for the full model (``None`` if the baseline was given).
    """

    dims: tuple[int, ...]
    accuracies: tuple[float, ...]
    baseline: float
    threshold: float
    d_int90: int | None
    n_params: int
    projection: str
    seconds: tuple[float, ...]
    baseline_seconds: float | None

    def d_int(self, fraction: float) -> int | None:
        """The smallest ``d`` whose accuracy reaches ``fraction * baseline``."""
        return _d_int(self.dims, self.accuracies, fraction * self.baseline)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "dims": list(self.dims),
            "accuracies": list(self.accuracies),
            "baseline": self.baseline,
            "threshold": self.threshold,
            "d_int90": self.d_int90,
            "n_params": self.n_params,
            "projection": self.projection,
            "seconds": list(self.seconds),
            "baseline_seconds": self.baseline_seconds,
        }


def _d_int(dims: Sequence[int], accuracies: Sequence[float], target: float) -> int | None:
    for d, acc in zip(dims, accuracies, strict=True):
        if acc >= target:
            return d
    return None


def _as_tensors(name: str, data: Data) -> tuple[torch.Tensor, torch.Tensor]:
    """``LabeledData`` or ``(x, y)`` -> float32 ``(n, ...)`` and int64 ``(n,)`` tensors."""
    if isinstance(data, LabeledData):
        x_any, y_any = data.x, data.y
    elif isinstance(data, tuple) and len(data) == 2:
        x_any, y_any = data
    else:
        raise TypeError(
            f"{name} must be a LabeledData or an (x, y) tuple, got {type(data).__name__}"
        )
    x = torch.as_tensor(np.asarray(x_any) if not isinstance(x_any, torch.Tensor) else x_any)
    y = torch.as_tensor(np.asarray(y_any) if not isinstance(y_any, torch.Tensor) else y_any)
    if not x.is_floating_point():
        x = x.float()
    check_nonempty(f"{name} x", int(x.shape[0]) if x.dim() else 0)
    check_finite(f"{name} x", x)
    if y.is_floating_point() or y.dtype == torch.bool:
        raise TypeError(f"{name} y must hold integer class labels, got dtype {y.dtype}")
    if tuple(y.shape) != (x.shape[0],):
        raise ValueError(f"{name} y must have shape ({x.shape[0]},), got {tuple(y.shape)}")
    return x.float(), y.long()


def _instantiate(source: ModuleSource, seed: int) -> nn.Module:
    """A fresh module: the factory called under ``seed``, or a deep copy of the instance."""
    if isinstance(source, nn.Module):
        return copy.deepcopy(source)
    if not callable(source):
        raise TypeError(f"module must be an nn.Module or a factory, got {type(source).__name__}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = source()
    if not isinstance(module, nn.Module):
        raise TypeError(f"the module factory must return an nn.Module, got {type(module).__name__}")
    return module


def _check_hyper(epochs: int, lr: float, batch_size: int, seed: int) -> None:
    check_int("epochs", epochs, min_value=1)
    check_positive_float("lr", lr)
    check_int("batch_size", batch_size, min_value=1)
    check_int("seed", seed, min_value=0)


def _fit(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    valid: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: torch.device,
) -> float:
    """Adam on the parameters that require grad, cross-entropy; returns validation accuracy."""
    model.to(device)
    x_tr, y_tr = train
    x_va, y_va = valid
    model.eval()  # probe the output width without touching batch-norm statistics
    with torch.no_grad():
        n_classes = int(model(x_tr[:1].to(device)).shape[-1])
    check_class_ids("train y", y_tr, n_classes)
    check_class_ids("valid y", y_va, n_classes)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = x_tr.shape[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # dropout and other stochastic layers
        model.train()
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                logits = model(x_tr[idx].to(device))
                loss = nn.functional.cross_entropy(logits, y_tr[idx].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, x_va.shape[0], 1024):
            logits = model(x_va[start : start + 1024].to(device))
            correct += int((logits.argmax(-1).cpu() == y_va[start : start + 1024]).sum())
    return correct / int(x_va.shape[0])


def train_subspace(
    module: ModuleSource,
    d: int,
    train: Data,
    valid: Data,
    *,
    projection: ProjectionKind = "dense",
    said: bool = False,
    epochs: int = 10,
    lr: float = 0.01,
    batch_size: int = 128,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> float:
    """Train a classifier in a random ``d``-dim subspace; return its validation accuracy.

    Args:
        module: an ``nn.Module`` (deep-copied, never changed) or a factory called under
            ``torch.manual_seed(seed)``; it maps ``x`` to logits ``(batch, n_classes)``.
        d: subspace dimension, ``1 <= d <= D``.
        train, valid: :class:`~embedlab.data.LabeledData` or ``(x (n, ...), y (n,))`` with
            integer labels in ``[0, n_classes)``; ``x`` must be finite.
        projection: ``"dense"``, ``"sparse"`` or ``"fastfood"``.
        said: one extra trainable scalar per parameter tensor (Aghajanyan et al. 2021).
        epochs, lr, batch_size: Adam on ``theta_d``, cross-entropy loss.
        seed: seeds the module factory, the projection and the batch order.
        device: where to train.

    Returns:
        Validation accuracy in [0, 1].
    """
    check_choice("projection", projection, PROJECTIONS)
    _check_hyper(epochs, lr, batch_size, seed)
    train_t, valid_t = _as_tensors("train", train), _as_tensors("valid", valid)
    net = _instantiate(module, seed)
    model = SubspaceModel(net, d, projection=projection, seed=seed, said=said)
    return _fit(
        model,
        train_t,
        valid_t,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        device=torch.device(device),
    )


def train_full(
    module: ModuleSource,
    train: Data,
    valid: Data,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> float:
    """Train every parameter of a classifier (the baseline of a sweep); return validation
    accuracy. Arguments as in :func:`train_subspace`."""
    _check_hyper(epochs, lr, batch_size, seed)
    train_t, valid_t = _as_tensors("train", train), _as_tensors("valid", valid)
    net = _instantiate(module, seed)
    for p in net.parameters():
        p.requires_grad_(True)
    return _fit(
        net,
        train_t,
        valid_t,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        device=torch.device(device),
    )


def intrinsic_dimension_sweep(
    module: ModuleSource,
    train: Data,
    valid: Data,
    *,
    dims: Sequence[int],
    projection: ProjectionKind = "fastfood",
    threshold: float = 0.9,
    baseline: float | None = None,
    said: bool = False,
    epochs: int = 10,
    lr: float = 0.01,
    baseline_lr: float = 1e-3,
    baseline_epochs: int | None = None,
    batch_size: int = 128,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> SweepResult:
    """Measure ``d_int90``: train the full model once, then the subspace model for each ``d``.

    Every run starts from the same ``theta0`` (the factory is called under ``seed``, or the
    same module instance is copied). ``d_int90`` is the smallest ``d`` in ``dims`` whose
    validation accuracy reaches ``threshold * baseline`` (Li et al. 2018 use 90%).

    Args:
        module: an ``nn.Module`` or a factory returning one (logits ``(batch, n_classes)``).
        train, valid: as in :func:`train_subspace`.
        dims: subspace dimensions to try, each in ``[1, D]``; sorted and de-duplicated.
        projection: ``"dense"``, ``"sparse"`` or ``"fastfood"`` (fastfood is the only one that
            stays cheap for D ~ 1e5 and d ~ 1e3).
        threshold: fraction of the baseline accuracy, in (0, 1].
        baseline: the full model's accuracy if already known (skips its training).
        said, epochs, lr, batch_size, seed, device: as in :func:`train_subspace`.
        baseline_lr, baseline_epochs: Adam learning rate and epochs of the full model
            (``baseline_epochs`` defaults to ``epochs``).
        progress: show a rich progress bar over the runs.

    Returns:
        A :class:`SweepResult`.
    """
    check_choice("projection", projection, PROJECTIONS)
    threshold = check_float_in_range("threshold", threshold, 0.0, 1.0)
    check_positive_float("threshold", threshold)
    _check_hyper(epochs, lr, batch_size, seed)
    check_positive_float("baseline_lr", baseline_lr)
    b_epochs = (
        epochs
        if baseline_epochs is None
        else check_int("baseline_epochs", baseline_epochs, min_value=1)
    )
    if baseline is not None:
        baseline = check_float_in_range("baseline", baseline, 0.0, 1.0)
    check_bool("progress", progress)
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence) or len(dims) == 0:
        raise ValueError(f"dims must be a non-empty sequence of integers, got {dims!r}")
    n_params = sum(p.numel() for p in _instantiate(module, seed).parameters())
    dims_sorted = sorted(
        {
            check_int_in_range(
                "d", d, 1, n_params, why=" (D, the number of parameters of the module)"
            )
            for d in dims
        }
    )
    train_t, valid_t = _as_tensors("train", train), _as_tensors("valid", valid)
    dev = torch.device(device)

    seconds: list[float] = []
    accuracies: list[float] = []
    baseline_seconds: float | None = None
    with progress_bar(progress) as bar:
        total = len(dims_sorted) + (1 if baseline is None else 0)
        task = bar.add_task(f"intrinsic dim ({projection})", total=total, info="")
        if baseline is None:
            start = time.perf_counter()
            net = _instantiate(module, seed)
            for p in net.parameters():
                p.requires_grad_(True)
            baseline = _fit(
                net,
                train_t,
                valid_t,
                epochs=b_epochs,
                lr=baseline_lr,
                batch_size=batch_size,
                seed=seed,
                device=dev,
            )
            baseline_seconds = time.perf_counter() - start
            bar.update(task, advance=1, info=f"full: {baseline:.4f}")
        for d in dims_sorted:
            start = time.perf_counter()
            model = SubspaceModel(
                _instantiate(module, seed), d, projection=projection, seed=seed, said=said
            )
            acc = _fit(
                model,
                train_t,
                valid_t,
                epochs=epochs,
                lr=lr,
                batch_size=batch_size,
                seed=seed,
                device=dev,
            )
            seconds.append(time.perf_counter() - start)
            accuracies.append(acc)
            bar.update(task, advance=1, info=f"d={d}: {acc:.4f}")
    return SweepResult(
        dims=tuple(dims_sorted),
        accuracies=tuple(accuracies),
        baseline=float(baseline),
        threshold=threshold,
        d_int90=_d_int(dims_sorted, accuracies, threshold * float(baseline)),
        n_params=n_params,
        projection=projection,
        seconds=tuple(seconds),
        baseline_seconds=baseline_seconds,
    )
