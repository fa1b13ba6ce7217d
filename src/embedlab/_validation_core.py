"""Validation helpers for scalars, choices, ids and labels (see :mod:`embedlab._validation`).

Each message names the parameter, the rule and the value that broke it, in the
style of scikit-learn's ``_param_validation``:
``ValueError("compression must be >= 1, got 0.5")``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from typing import TypeGuard

    import torch

__all__ = [
    "BudgetError",
    "check_binary_labels",
    "check_bool",
    "check_choice",
    "check_compression",
    "check_divides",
    "check_finite",
    "check_float_in_range",
    "check_fraction",
    "check_ids_in_range",
    "check_ids_tensor",
    "check_int",
    "check_int_tuple",
    "check_keywords",
    "check_nonempty",
    "check_optional_int",
    "check_positive_float",
    "check_probability",
    "check_same_length",
    "is_tensor",
]


def is_tensor(value: Any) -> TypeGuard[torch.Tensor]:
    """Whether ``value`` is a torch tensor, without importing torch (a process that never
    imported torch holds no tensors): keeps ``import embedlab.index`` free of torch."""
    mod = sys.modules.get("torch")
    return mod is not None and isinstance(value, mod.Tensor)


class BudgetError(ValueError):
    """A method cannot fit the memory budget it was asked for."""


def check_int(name: str, value: Any, *, min_value: int | None = None) -> int:
    """Return ``value`` as ``int`` after checking it is an integer ``>= min_value``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")
    return int(value)


def check_positive_float(
    name: str, value: Any, *, min_value: float = 0.0, strict: bool = True
) -> float:
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
    if is_tensor(array):
        import torch

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
    if not is_tensor(ids):
        raise TypeError(f"ids must be a torch.Tensor, got {type(ids).__name__}")
    import torch

    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"ids must be an int64 or int32 tensor, got dtype {ids.dtype}")
    if ids.dim() != 2 or ids.shape[1] != n_fields:
        raise ValueError(
            f"ids must have shape (batch, n_fields={n_fields}), got {tuple(ids.shape)}"
        )
    if ids.numel() and bool((ids < 0).any()):
        row, col = (int(i) for i in torch.nonzero(ids < 0)[0])
        raise ValueError(f"ids must be >= 0, got {int(ids[row, col])} at row {row}, field {col}")


def check_ids_in_range(
    ids: torch.Tensor, cardinalities: Sequence[int], names: Sequence[str]
) -> None:
    """Every id of field ``j`` must lie in ``[0, cardinalities[j])``."""
    import torch

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


def check_bool(name: str, value: Any) -> bool:
    """``value`` must be a real ``bool`` (``0``/``1`` are refused so typos surface)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_probability(name: str, value: Any) -> float:
    """A number in the half-open interval [0, 1), e.g. a dropout rate."""
    v = check_positive_float(name, value, strict=False)
    if v >= 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return v


def check_optional_int(name: str, value: Any, *, min_value: int | None = None) -> int | None:
    """An integer ``>= min_value`` or ``None`` (the spec-string text ``"none"`` counts as None)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "")):
        return None
    return check_int(name, value, min_value=min_value)


def check_int_tuple(name: str, value: Any, *, min_value: int = 1) -> tuple[int, ...]:
    """Layer sizes: a sequence of ints, one int, or a spec-string text ``"400-400"``.

    ``""``, ``"none"``, ``None`` (a spec's ``hidden=none``) and ``()`` give an empty tuple
    (no layers); a spec's list ``hidden=[400, 400]`` is a sequence.
    """
    rule = f"a sequence of integers >= {min_value} or a string like '400-400'"
    items: list[Any]
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none"):
            return ()
        parts = text.split("-")
        items = []
        for part in parts:
            try:
                items.append(int(part.strip()))
            except ValueError:
                raise ValueError(f"{name} must be {rule}, got {value!r}") from None
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise TypeError(f"{name} must be {rule}, got {value!r}")
    out: list[int] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)) or item < min_value:
            raise ValueError(f"{name} must be {rule}, got {value!r}")
        out.append(int(item))
    return tuple(out)


def check_keywords(owner: str, given: Iterable[str], valid: Iterable[str]) -> None:
    """Every keyword in ``given`` must be one of ``valid``; the error lists the valid ones."""
    valid_sorted = sorted(valid)
    for key in given:
        if key not in valid_sorted:
            raise ValueError(
                f"unknown hyper-parameter {key!r} for {owner}; valid: {', '.join(valid_sorted)}"
            )


def check_same_length(name_a: str, a: Sequence[Any] | np.ndarray, name_b: str, b: Any) -> None:
    """Two arrays that pair up row by row must have the same shape."""
    shape_a = np.shape(a)
    shape_b = np.shape(b)
    if shape_a != shape_b:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {shape_a} and {shape_b}"
        )


def check_binary_labels(name: str, labels: np.ndarray, *, both_classes: bool = False) -> None:
    """Labels must be 0 or 1; with ``both_classes`` each class must occur at least once."""
    bad = ~((labels == 0) | (labels == 1))
    if bad.any():
        raise ValueError(f"{name} must be 0 or 1, got {labels[bad][0].item()!r}")
    if both_classes:
        n_pos = int(np.count_nonzero(labels == 1))
        if n_pos == 0 or n_pos == labels.size:
            only = 1 if n_pos else 0
            raise ValueError(
                f"{name} must contain both classes (0 and 1) for AUC to be defined, "
                f"got only class {only}"
            )


def check_divides(name: str, value: Any, of_name: str, of_value: int) -> int:
    """An integer ``>= 1`` that divides ``of_value`` (e.g. probes must divide dim)."""
    v = check_int(name, value, min_value=1)
    if of_value % v != 0:
        raise ValueError(f"{name} must divide {of_name}={of_value}, got {value}")
    return v


def check_float_in_range(name: str, value: Any, low: float, high: float) -> float:
    """A finite number in the closed interval ``[low, high]``."""
    v = check_positive_float(name, value, min_value=low, strict=False)
    if v > high:
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value}")
    return v
