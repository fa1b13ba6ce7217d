"""Validation helpers: every user-facing error of embedlab is raised from here.

Each message names the parameter, the rule and the value that broke it, in the
style of scikit-learn's ``_param_validation``:
``ValueError("compression must be >= 1, got 0.5")``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "BudgetError",
    "check_choice",
    "check_compression",
    "check_finite",
    "check_fraction",
    "check_ids_in_range",
    "check_ids_tensor",
    "check_int",
    "check_nonempty",
    "check_positive_float",
]


class BudgetError(ValueError):
    """A method cannot fit the memory budget it was asked for."""


def check_int(name: str, value: Any, *, min_value: int | None = None) -> int:
    """Return ``value`` as ``int`` after checking it is an integer ``>= min_value``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")
    return int(value)


def check_positive_float(name: str, value: Any, *, min_value: float = 0.0, strict: bool = True) -> float:
    """Return ``value`` as ``float`` after checking it is finite and above ``min_value``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value}")
    if strict and v <= min_value:
        raise ValueError(f"{name} must be > {min_value:g}, got {value}")
    if not strict and v < min_value:
        raise ValueError(f"{name} must be >= {min_value:g}, got {value}")
    return v


def check_compression(value: Any) -> float:
    """``compression`` is the factor by which a table is smaller than the float32 full table."""
    return check_positive_float("compression", value, min_value=1.0, strict=False)


def check_fraction(name: str, value: Any) -> float:
    """A number in the open interval (0, 1)."""
    v = check_positive_float(name, value)
    if v >= 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value}")
    return v


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """Check ``value`` is one of ``choices``; the error lists the valid values."""
    valid = sorted(choices)
    if value not in valid:
        raise ValueError(f"{name} must be one of {', '.join(valid)}; got {value!r}")
    return str(value)


def check_nonempty(name: str, n: int) -> None:
    if n == 0:
        raise ValueError(f"{name} must not be empty, got 0 rows")


def check_finite(name: str, array: np.ndarray | torch.Tensor) -> None:
    """Raise if ``array`` holds NaN or infinity, saying where the first one is."""
    if isinstance(array, torch.Tensor):
        bad = ~torch.isfinite(array)
        if bool(bad.any()):
            first = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise ValueError(f"{name} must be finite, got a non-finite value at index {first}")
        return
    arr = np.asarray(array)
    if arr.dtype.kind == "f":
        bad_np = ~np.isfinite(arr)
        if bad_np.any():
            first = tuple(int(i) for i in np.argwhere(bad_np)[0])
            raise ValueError(f"{name} must be finite, got a non-finite value at index {first}")


def check_ids_tensor(ids: torch.Tensor, n_fields: int) -> None:
    """Ids fed to a table: an integer tensor of shape ``(batch, n_fields)``, no negatives."""
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"ids must be a torch.Tensor, got {type(ids).__name__}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"ids must be an int64 or int32 tensor, got dtype {ids.dtype}")
    if ids.dim() != 2 or ids.shape[1] != n_fields:
        raise ValueError(
            f"ids must have shape (batch, n_fields={n_fields}), got {tuple(ids.shape)}"
        )
    if ids.numel() and bool((ids < 0).any()):
        row, col = (int(i) for i in torch.nonzero(ids < 0)[0])
        raise ValueError(
            f"ids must be >= 0, got {int(ids[row, col])} at row {row}, field {col}"
        )


def check_ids_in_range(ids: torch.Tensor, cardinalities: Sequence[int], names: Sequence[str]) -> None:
    """Every id of field ``j`` must lie in ``[0, cardinalities[j])``."""
    if ids.numel() == 0:
        return
    card = torch.as_tensor(cardinalities, dtype=ids.dtype, device=ids.device)
    bad = ids >= card
    if bool(bad.any()):
        row, col = (int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(
            f"ids of field {names[col]!r} must be in [0, {cardinalities[col]}), "
            f"got {int(ids[row, col])} at row {row}"
        )
