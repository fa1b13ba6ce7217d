"""Columns of the attribute store and the encoding of added values (see
:mod:`embedlab.index.attributes` for the model: categorical and numeric columns,
the quantile sketch behind selectivity estimates)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "Categorical",
    "Column",
    "ColumnKind",
    "Numeric",
    "ValueType",
    "encode_categorical",
    "encode_numeric",
    "infer_kind",
    "is_number",
    "python_kind",
    "python_value",
    "sketch_cdf",
    "type_name",
    "value_type_of",
]

#: attribute column kind (see :mod:`embedlab.index.attributes`): ``"categorical"``
#: (dictionary-encoded strings, integers or booleans) or ``"numeric"`` (ordered ``float64``)
ColumnKind = Literal["categorical", "numeric"]
ValueType = Literal["str", "int", "bool"]
B8 = npt.NDArray[np.bool_]
I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]
_SKETCH_BINS = 128
_SKETCH_STALE = 0.1  # rebuild the quantile sketch once 10% of the rows changed


class Categorical:
    """A dictionary-encoded column: ``values[code]``, ``index[value] -> code``, row codes,
    and the row count of each code."""

    kind: ColumnKind = "categorical"

    def __init__(self, value_type: ValueType) -> None:
        self.value_type: ValueType = value_type
        self.values: list[Any] = []
        self.index: dict[Any, int] = {}
        self.codes: I32 = np.zeros(0, np.int32)
        self.counts: npt.NDArray[np.int64] = np.zeros(0, np.int64)

    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.counts.nbytes)


class Numeric:
    """A ``float64`` column with a lazily rebuilt equi-depth quantile sketch."""

    kind: ColumnKind = "numeric"

    def __init__(self) -> None:
        self.data: F64 = np.zeros(0, np.float64)
        self.sketch: F64 | None = None
        self.n_distinct = 0
        self.changed = 0

    def nbytes(self) -> int:
        # The sketch is built lazily; count its fixed size so the figure does not depend on it.
        return int(self.data.nbytes) + (_SKETCH_BINS + 1) * 8

    def ensure_sketch(self) -> F64:
        n = self.data.shape[0]
        if self.sketch is None or self.changed > _SKETCH_STALE * max(n, 1):
            srt = np.sort(self.data)
            if n:
                idx = np.round(np.linspace(0, n - 1, _SKETCH_BINS + 1)).astype(np.int64)
                self.sketch = srt[idx]
                self.n_distinct = int(np.count_nonzero(np.diff(srt)) + 1)
            else:
                self.sketch = np.zeros(0, np.float64)
                self.n_distinct = 0
            self.changed = 0
        return self.sketch


Column = Categorical | Numeric


def sketch_cdf(q: F64, v: float, *, inclusive: bool, n_distinct: int) -> float:
    """Share of rows ``<= v`` (``inclusive``) or ``< v`` from the quantile sketch ``q``."""
    bins = q.shape[0] - 1
    if inclusive:
        if v < q[0]:
            return 0.0
        if v >= q[-1]:
            return 1.0
        j = int(np.searchsorted(q, v, side="right"))
    else:
        if v <= q[0]:
            return 0.0
        if v > q[-1]:
            return 1.0
        j = int(np.searchsorted(q, v, side="left"))
    lo, hi = float(q[j - 1]), float(q[j])
    # When v is a sketch value, its copies extend past the boundary by about half the mass
    # of an average value (at most half a bin) on each side.
    pad = min(1.0 / max(n_distinct, 1), 1.0 / bins) / 2
    if inclusive and v == lo:
        return float((j - 1) / bins + pad)
    if not inclusive and v == hi:
        return float(j / bins - pad)
    return float((j - 1 + (v - lo) / (hi - lo)) / bins)


def type_name(value: Any) -> str:
    """The type name of ``value`` for error messages."""
    return type(value).__name__


def python_kind(value: Any) -> str:
    """``"bool"``, ``"str"``, ``"number"`` or ``"other"``: what one list element holds."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    return "other"


def is_number(value: Any) -> bool:
    """True for ints and floats (numpy or Python), False for booleans."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def infer_kind(name: str, arr: np.ndarray) -> ColumnKind:
    """The column kind of a new column's values: numbers are numeric, the rest categorical."""
    if arr.dtype.kind in "iuf":
        return "numeric"
    if arr.dtype.kind in "UbO":
        return "categorical"
    raise TypeError(
        f"attrs[{name!r}] must hold strings, booleans or numbers, got dtype {arr.dtype}"
    )


def encode_numeric(name: str, arr: np.ndarray) -> F64:
    """``arr`` as finite ``float64`` values of numeric column ``name``."""
    if arr.dtype.kind == "O" and arr.size and all(is_number(v) for v in arr):
        arr = arr.astype(np.float64)
    if arr.dtype.kind not in "iuf" and arr.size:
        raise TypeError(
            f"attrs[{name!r}] must hold numbers for numeric column {name!r}, got dtype {arr.dtype}"
        )
    vals = arr.astype(np.float64)
    if not np.isfinite(vals).all():
        bad = int(np.flatnonzero(~np.isfinite(vals))[0])
        raise ValueError(f"attrs[{name!r}] must be finite, got {vals[bad]} at row {bad}")
    return vals


def encode_categorical(
    name: str, arr: np.ndarray, vtype: ValueType | None, index: dict[Any, int]
) -> tuple[I32, list[Any], ValueType]:
    """Codes of ``arr`` in a categorical column with dictionary ``index``, its new values
    and the column's value type (checked against ``vtype``, the rows already added)."""
    if arr.dtype.kind == "U":
        got: ValueType | None = "str"
        items: np.ndarray = arr
    elif arr.dtype.kind == "b":
        got, items = "bool", arr
    elif arr.dtype.kind in "iu":
        got, items = "int", arr
    elif arr.dtype.kind == "O":
        kinds = {value_type_of(v) for v in arr}
        if None in kinds or len(kinds) > 1:
            bad = next((v for v in arr if value_type_of(v) != value_type_of(arr[0])), arr[0])
            raise TypeError(
                f"attrs[{name!r}] must hold values of one type (str, int or bool), "
                f"got {bad!r} ({type_name(bad)})"
            )
        got = kinds.pop() if kinds else vtype
        items = arr.astype(str) if got == "str" else arr.astype(np.int64 if got == "int" else bool)
    else:
        raise TypeError(
            f"attrs[{name!r}] must hold strings, integers or booleans for categorical "
            f"column {name!r}, got dtype {arr.dtype}"
        )
    if vtype is not None and got is not None and got != vtype and arr.size:
        raise TypeError(
            f"attrs[{name!r}] must hold {vtype} values like the rows already added, got {got}"
        )
    value_type: ValueType = vtype or got or "str"
    uniq, inverse = np.unique(items, return_inverse=True)
    new_values: list[Any] = []
    mapped = np.empty(uniq.shape[0], np.int32)
    start = len(index)
    for i, raw in enumerate(uniq.tolist()):
        value = python_value(raw, value_type)
        code = index.get(value)
        if code is None:
            code = start + len(new_values)
            new_values.append(value)
        mapped[i] = code
    # First appearance order for new values is not needed: codes only have to be stable.
    return mapped[inverse.reshape(-1)].astype(np.int32), new_values, value_type


def value_type_of(value: Any) -> ValueType | None:
    """``"bool"``, ``"str"`` or ``"int"`` for a categorical value; ``None`` for anything else."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (int, np.integer)):
        return "int"
    return None


def python_value(raw: Any, value_type: ValueType) -> Any:
    """``raw`` (a numpy scalar or Python value) as the column's Python type."""
    if value_type == "bool":
        return bool(raw)
    if value_type == "int":
        return int(raw)
    return str(raw)
