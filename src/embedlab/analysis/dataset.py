"""Intrinsic properties of a data set and of a model's representations of it.

Konz & Mazurowski, "The Effect of Intrinsic Dataset Properties on Generalization:
Unraveling Learning Differences Between Natural and Medical Images" (ICLR 2024):
``d_data`` (MLE intrinsic dimension of the inputs, k = 20), label sharpness ``K_F`` and
``d_repr`` (intrinsic dimension of learned representations); they observe ``d_data >= d_repr``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Literal

import numpy as np
import torch

from embedlab._validation import (
    check_choice,
    check_enough_points,
    check_int,
    check_label_vector,
    check_points,
)
from embedlab.analysis._knn import Backend
from embedlab.analysis._scale import pow2_scale
from embedlab.analysis.intrinsic_dim import mle_id, twonn

__all__ = ["d_data", "d_repr", "label_sharpness", "representations"]


def _flat(x: Any, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (n_samples, ...) with >= 2 dims, got {arr.shape}")
    return check_points(name, arr.reshape(arr.shape[0], -1))


def d_data(x: Any, k: int = 20, *, backend: Backend = "auto") -> float:
    """Intrinsic dimension of the inputs: MLE (Levina–Bickel, harmonic mean) with ``k``
    neighbours on the flattened samples ``(n_samples, ...)``.
    """
    return mle_id(_flat(x, "X"), k, backend=backend)


def label_sharpness(
    x: Any,
    labels: Any,
    *,
    n_pairs: int = 100_000,
    seed: int = 0,
    kind: Literal["auto", "class", "value"] = "auto",
) -> float:
    """Label sharpness ``K_F = max_{j,k} ||y_j - y_k|| / ||x_j - x_k||`` over sampled pairs.

    A Lipschitz-constant estimate of the labelling function (Konz & Mazurowski 2024).
    Class labels are one-hot encoded, so a pair of different classes has
    ``||y_j - y_k|| = sqrt(2)``. Pairs of identical inputs (``x_j = x_k``) are skipped; those
    with different labels (an infinite ratio) are counted in a ``UserWarning``. ``ValueError``
    when every sampled pair is of identical inputs, or when the value is beyond float64's
    range. Inputs and value labels are rescaled by powers of two first, so the ratio is exact
    at 1e200 or 1e-200.

    Args:
        x: ``(n_samples, ...)`` inputs, flattened per sample.
        labels: ``(n_samples,)`` class ids or values, or ``(n_samples, m)`` values.
        n_pairs: pairs ``(j, k)``, ``j != k``, drawn uniformly with replacement.
        seed: seed of the pair sampler.
        kind: ``"class"`` (one-hot), ``"value"`` (as given) or ``"auto"`` (integer 1-D labels
            are classes).
    """
    pts = _flat(x, "X").astype(np.float64)
    n = pts.shape[0]
    check_enough_points("X", n, 2, "label sharpness over pairs")
    y = check_label_vector("labels", labels, n)
    n_pairs = check_int("n_pairs", n_pairs, min_value=1)
    kind_s = check_choice("kind", kind, ("auto", "class", "value"))
    if kind_s == "auto":
        kind_s = "class" if y.ndim == 1 and y.dtype.kind in "iub" else "value"
    rng = np.random.default_rng(seed)
    j = rng.integers(0, n, size=n_pairs)
    k = (j + rng.integers(1, n, size=n_pairs)) % n  # uniform over k != j
    y_scale = 1.0
    if kind_s == "class":
        if y.ndim != 1:
            raise ValueError(f"class labels must have shape ({n},), got {y.shape}")
        dy = np.where(y[j] != y[k], np.sqrt(2.0), 0.0)
    else:
        yv, ys = pow2_scale(y.reshape(n, -1))
        y_scale = float(ys)
        dy = np.linalg.norm(yv[j] - yv[k], axis=1)
    pts, xs = pow2_scale(pts)
    best = 0.0
    n_distinct = n_infinite = 0
    step = max(1, (1 << 22) // pts.shape[1])
    for start in range(0, n_pairs, step):
        sl = slice(start, start + step)
        dx = np.linalg.norm(pts[j[sl]] - pts[k[sl]], axis=1)
        ok = dx > 0
        n_distinct += int(ok.sum())
        n_infinite += int((~ok & (dy[sl] > 0)).sum())
        if ok.any():
            best = max(best, float((dy[sl][ok] / dx[ok]).max()))
    if n_distinct == 0:
        raise ValueError(
            f"X must hold distinct inputs for label sharpness, but all {n_pairs} sampled pairs "
            "are of identical inputs"
        )
    if n_infinite:
        warnings.warn(
            f"label_sharpness: skipped {n_infinite} of {n_pairs} sampled pairs of identical "
            "inputs with different labels (their ratio is infinite)",
            UserWarning,
            stacklevel=2,
        )
    if best == 0.0:
        return 0.0
    log_value = math.log(best) + math.log(y_scale) - math.log(float(xs))
    if log_value > math.log(np.finfo(np.float64).max):
        raise ValueError(
            f"label sharpness is about 1e{log_value / math.log(10):.0f}, beyond float64's "
            "range (1.8e308): the inputs are far closer together than the labels"
        )
    return math.exp(log_value)


def representations(model: torch.nn.Module, data: Any, *, batch_size: int = 256) -> np.ndarray:
    """Run ``model`` in eval mode, without gradients, over ``data`` in batches.

    Args:
        model: any module mapping a batch ``(b, ...)`` to ``(b, ...)`` features.
        data: ``(n_samples, ...)`` numpy array or tensor.

    Returns:
        ``(n_samples, n_features)`` float32 numpy, each output flattened.
    """
    batch_size = check_int("batch_size", batch_size, min_value=1)
    tensor = data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data))
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    if tensor.is_floating_point() and param is not None:
        tensor = tensor.to(param.dtype)
    was_training = model.training
    model.eval()
    outs: list[np.ndarray] = []
    try:
        with torch.no_grad():
            for start in range(0, tensor.shape[0], batch_size):
                out = model(tensor[start : start + batch_size].to(device))
                outs.append(out.reshape(out.shape[0], -1).float().cpu().numpy())
    finally:
        model.train(was_training)
    if not outs:
        raise ValueError("data must not be empty, got 0 rows")
    return np.concatenate(outs, axis=0)


def d_repr(
    representation: Any,
    data: Any = None,
    *,
    k: int = 20,
    estimator: Literal["mle", "twonn"] = "mle",
    batch_size: int = 256,
    backend: Backend = "auto",
) -> float:
    """Intrinsic dimension of a model's representations of a data set.

    Args:
        representation: ``(n_samples, ...)`` features, or a ``torch.nn.Module`` that is run
            over ``data`` (see :func:`representations`).
        data: the inputs when ``representation`` is a module.
        k: neighbours for the MLE estimator.
        estimator: ``"mle"`` (Levina–Bickel, as the paper) or ``"twonn"``.
    """
    est = check_choice("estimator", estimator, ("mle", "twonn"))
    if isinstance(representation, torch.nn.Module):
        if data is None:
            raise ValueError("data must be given when representation is a torch module")
        feats = representations(representation, data, batch_size=batch_size)
    else:
        feats = _flat(representation, "representation")
    if est == "twonn":
        return twonn(_flat(feats, "representation"), backend=backend)
    return mle_id(_flat(feats, "representation"), k, backend=backend)
