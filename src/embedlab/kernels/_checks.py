"""Input checks shared by the deep-kernel-machine components (every error names its parameter)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from embedlab._validation import check_finite, check_int

__all__ = ["as_float64", "check_gram", "check_labels", "check_nu"]


def check_nu(nu: Any, n_layers: int) -> tuple[float, ...]:
    """``nu`` as one float per layer; each must be > 0 (``inf`` is allowed: the NNGP limit)."""
    values: Sequence[Any] = nu if isinstance(nu, (list, tuple)) else [nu] * n_layers
    if len(values) != n_layers:
        raise ValueError(f"nu must have one value per layer ({n_layers}), got {len(values)}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"nu must be a number or a list of numbers, got {v!r}")
        f = float(v)
        if math.isnan(f) or f <= 0:
            raise ValueError(f"nu must be > 0 (inf for the NNGP limit), got {v}")
        out.append(f)
    return tuple(out)


def as_float64(name: str, value: Any, *, ndim: int = 2) -> torch.Tensor:
    """``value`` (array or tensor) as a finite float64 tensor with ``ndim`` dimensions."""
    if isinstance(value, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(value))
    elif isinstance(value, torch.Tensor):
        t = value
    else:
        raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(value).__name__}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.uint8)):
        raise TypeError(f"{name} must hold numbers, got dtype {t.dtype}")
    if t.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}")
    t = t.to(torch.float64)
    check_finite(name, t.detach())
    return t


def check_gram(name: str, gram: Any, *, tol: float = 1e-8) -> torch.Tensor:
    """A finite, symmetric, positive semi-definite ``(n, n)`` float64 matrix.

    PSD up to ``tol * max(|diag|)`` (round-off); a NaN, an asymmetric matrix or a
    clearly negative eigenvalue raises a ValueError naming ``name``.
    """
    g = as_float64(name, gram)
    n = check_int(f"{name} rows", g.shape[0], min_value=1)
    if g.shape[1] != n:
        raise ValueError(f"{name} must be square (n, n), got shape {tuple(g.shape)}")
    scale = max(float(g.diagonal().abs().max()), 1e-300)
    asym = float((g - g.T).abs().max())
    if asym > 1e-8 * scale:
        raise ValueError(f"{name} must be symmetric, got max |G - G^T| = {asym:.3g}")
    low = float(torch.linalg.eigvalsh(g.detach())[0])
    if low < -tol * scale * n:
        raise ValueError(
            f"{name} must be positive semi-definite, got smallest eigenvalue {low:.3g}"
        )
    return g


def check_labels(name: str, value: Any, n: int) -> np.ndarray:
    """Integer class ids ``(n,)`` >= 0."""
    y = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{name} must be integer class ids, got dtype {y.dtype}")
    if n and int(y.min()) < 0:
        raise ValueError(f"{name} must be >= 0, got {int(y.min())}")
    return y.astype(np.int64)
