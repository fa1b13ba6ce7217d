"""Compiled filters of the attribute store: clauses, predicates, their evaluation and
selectivity estimates (see :mod:`embedlab.index.attributes` for the filter syntax)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from embedlab.index._attr_columns import (
    B8,
    Categorical,
    Column,
    Numeric,
    is_number,
    python_value,
    sketch_cdf,
    type_name,
    value_type_of,
)

__all__ = [
    "Clause",
    "Predicate",
    "Selectivity",
    "clause_fraction",
    "eval_clause",
    "filter_number",
    "make_clause",
]


@dataclass(frozen=True)
class Clause:
    """One compiled condition on one column.

    ``op`` is ``"in"`` for categorical equality / membership (``codes``: the dictionary codes
    of the wanted values that exist; empty matches nothing), ``"isin"`` for numeric
    equality / membership (``values``) and ``"range"`` for numeric ranges (``low``/``high``,
    inclusive, ``None`` for an open end).
    """

    column: str
    op: Literal["in", "isin", "range"]
    codes: tuple[int, ...] = ()
    values: tuple[float, ...] = ()
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Predicate:
    """An AND of clauses; ``key`` identifies equal predicates (for grouping queries)."""

    clauses: tuple[Clause, ...]

    @property
    def key(self) -> tuple[Clause, ...]:
        """Hashable identity of the predicate (its clauses): equal filters have equal keys."""
        return self.clauses

    @property
    def matches_all(self) -> bool:
        """True for the empty predicate (no clause), which every row matches."""
        return not self.clauses


@dataclass(frozen=True)
class Selectivity:
    """Estimated share of rows a predicate keeps.

    Args:
        fraction: estimated share in ``[0, 1]``.
        rows: estimated number of matching rows (``fraction * n`` rounded).
        exact: True when the estimate is an exact count (one categorical clause, or no rows).
    """

    fraction: float
    rows: int
    exact: bool


def make_clause(name: Any, cond: Any, col: Column) -> Clause:
    """Compile the condition ``cond`` on column ``name`` (holding ``col``) to a clause."""
    if isinstance(cond, tuple):
        if len(cond) != 2:
            raise ValueError(f"filter[{name!r}] range must be a (low, high) tuple, got {cond!r}")
        if isinstance(col, Categorical):
            raise ValueError(
                f"filter[{name!r}] is a range but column {name!r} is categorical; "
                "use a value or a set of values"
            )
        low, high = (filter_number(name, v, allow_none=True) for v in cond)
        if low is not None and high is not None and low > high:
            raise ValueError(f"filter[{name!r}] range has low > high: {cond!r}")
        return Clause(str(name), "range", low=low, high=high)
    if isinstance(cond, (set, frozenset, list)):
        if not cond:
            raise ValueError(f"filter[{name!r}] is an empty set; it would match nothing")
        items = list(cond)
    elif isinstance(cond, (Mapping, np.ndarray)) or (
        isinstance(cond, Sequence) and not isinstance(cond, str)
    ):
        raise TypeError(
            f"filter[{name!r}] must be a value, a set/list of values or a (low, high) "
            f"tuple, got {type_name(cond)}"
        )
    else:
        items = [cond]
    if isinstance(col, Numeric):
        nums = sorted({cast(float, filter_number(name, v)) for v in items})
        return Clause(str(name), "isin", values=tuple(nums))
    codes = set()
    for v in items:
        if value_type_of(v) != col.value_type:
            raise TypeError(
                f"filter[{name!r}] values must be {col.value_type} for column {name!r}, "
                f"got {v!r} ({type_name(v)})"
            )
        code = col.index.get(python_value(v, col.value_type))
        if code is not None:
            codes.add(code)
    return Clause(str(name), "in", codes=tuple(sorted(codes)))


def filter_number(name: Any, value: Any, *, allow_none: bool = False) -> float | None:
    """A filter value of numeric column ``name`` as a float (``None`` kept if allowed)."""
    if value is None and allow_none:
        return None
    if not is_number(value):
        raise TypeError(
            f"filter[{name!r}] values must be numbers for numeric column {name!r}, "
            f"got {value!r} ({type_name(value)})"
        )
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"filter[{name!r}] must not be NaN")
    return v


def eval_clause(col: Column, clause: Clause, rows: npt.NDArray[np.int64] | None) -> B8:
    """Which rows (all, or the positions ``rows``) of column ``col`` pass ``clause``."""
    if isinstance(col, Categorical):
        codes = col.codes if rows is None else col.codes[rows]
        if len(clause.codes) == 1:
            return cast(B8, codes == clause.codes[0])
        table = np.zeros(len(col.values) + 1, dtype=bool)
        table[list(clause.codes)] = True
        return cast(B8, table[codes])
    data = col.data if rows is None else col.data[rows]
    if clause.op == "isin":
        if len(clause.values) == 1:
            return cast(B8, data == clause.values[0])
        return np.isin(data, np.asarray(clause.values))
    out = np.ones(data.shape[0], dtype=bool)
    if clause.low is not None:
        out &= data >= clause.low
    if clause.high is not None:
        out &= data <= clause.high
    return out


def clause_fraction(col: Column, clause: Clause, n: int) -> float:
    """Estimated share of the ``n`` rows of ``col`` passing ``clause`` (no scan)."""
    if isinstance(col, Categorical):
        return float(col.counts[list(clause.codes)].sum()) / n if clause.codes else 0.0
    q = col.ensure_sketch()
    nd = col.n_distinct
    if clause.op == "range":
        hi = (
            1.0
            if clause.high is None
            else sketch_cdf(q, clause.high, inclusive=True, n_distinct=nd)
        )
        lo = (
            0.0 if clause.low is None else sketch_cdf(q, clause.low, inclusive=False, n_distinct=nd)
        )
        return max(0.0, hi - lo)
    total = 0.0
    for v in clause.values:
        mass = sketch_cdf(q, v, inclusive=True, n_distinct=nd) - sketch_cdf(
            q, v, inclusive=False, n_distinct=nd
        )
        inside = q[0] <= v <= q[-1]
        total += max(mass, 1.0 / max(col.n_distinct, 1)) if inside else 0.0
    return min(1.0, total)
