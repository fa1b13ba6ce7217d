"""Column-wise attribute store and filter predicates for filtered vector search.

Every stored vector (row) has one value per attribute column. Columns are of two kinds:

- ``"categorical"``: strings, integers or booleans, dictionary-encoded to ``int32`` codes
  (the dictionary maps each distinct value to its code, in order of first appearance);
- ``"numeric"``: ordered values stored as ``float64``.

Filters are dicts of ``column -> condition``; several keys mean AND::

    {"lang": "en"}                       # equality
    {"lang": {"en", "de"}}               # set membership (a set, frozenset or list)
    {"year": (2019, 2023)}               # inclusive range; None for an open end
    {"lang": "en", "year": (2019, None)} # AND

A value absent from a categorical dictionary matches nothing (an empty result, not an
error). Unknown columns, values of the wrong type, empty sets, ranges on categorical columns
and ranges with ``low > high`` raise errors naming the column and the value.

Selectivity is estimated from column statistics without scanning the rows: per-value counts
for categorical columns (exact for one clause), an equi-depth quantile sketch (128 bins,
rebuilt lazily once the column changed by 10%) plus the number of distinct values for
numeric columns, and the independence assumption for AND. :meth:`AttributeStore.count` gives
the exact count by evaluating the predicate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from embedlab._validation import check_choice

__all__ = [
    "COLUMN_KINDS",
    "AttributeStore",
    "Clause",
    "ColumnKind",
    "Predicate",
    "Selectivity",
]

#: attribute column kind (see the module docstring): ``"categorical"`` (dictionary-encoded
#: strings, integers or booleans) or ``"numeric"`` (ordered ``float64`` values)
ColumnKind = Literal["categorical", "numeric"]
COLUMN_KINDS: tuple[str, ...] = ("categorical", "numeric")
ValueType = Literal["str", "int", "bool"]
B8 = npt.NDArray[np.bool_]
I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]

_SKETCH_BINS = 128
_SKETCH_STALE = 0.1  # rebuild the quantile sketch once 10% of the rows changed


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


class _Categorical:
    kind: ColumnKind = "categorical"

    def __init__(self, value_type: ValueType) -> None:
        self.value_type: ValueType = value_type
        self.values: list[Any] = []
        self.index: dict[Any, int] = {}
        self.codes: I32 = np.zeros(0, np.int32)
        self.counts: npt.NDArray[np.int64] = np.zeros(0, np.int64)

    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.counts.nbytes)


class _Numeric:
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


_Column = _Categorical | _Numeric


def _cdf(q: F64, v: float, *, inclusive: bool, n_distinct: int) -> float:
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


def _type_name(value: Any) -> str:
    return type(value).__name__


def _python_kind(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return "number"
    return "other"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


class AttributeStore:
    """Attribute columns of the rows of an index, appended and removed with the vectors.

    Args:
        columns: optional schema ``{name: "categorical" | "numeric"}``. Without it the columns
            and their kinds come from the first :meth:`add` (strings and booleans are
            categorical, numbers numeric); declare integer codes as ``"categorical"`` to get
            exact per-value statistics for them.

    Example:
        >>> store = AttributeStore()
        >>> store.add({"lang": ["en", "de", "en"], "year": [2019, 2021, 2024]}, 3)
        >>> store.mask({"lang": "en", "year": (2019, 2023)}).tolist()
        [True, False, False]
        >>> store.estimate({"lang": {"en", "fr"}}).rows
        2
    """

    def __init__(self, columns: Mapping[str, str] | None = None) -> None:
        self._cols: dict[str, _Column] = {}
        self._declared: dict[str, ColumnKind] = {}
        self._n = 0
        if columns is not None:
            if not isinstance(columns, Mapping):
                raise TypeError(
                    f"columns must be a dict of name -> kind, got {type(columns).__name__}"
                )
            for name, kind in columns.items():
                self._check_name(name)
                self._declared[name] = cast(ColumnKind, check_choice(
                    f"kind of column {name!r}", kind, COLUMN_KINDS
                ))  # fmt: skip

    # ---------------------------------------------------------------- inspection
    def __len__(self) -> int:
        return self._n

    @property
    def columns(self) -> dict[str, ColumnKind]:
        """``{name: kind}`` of the columns (declared or seen), in order."""
        out = dict(self._declared)
        out.update({name: col.kind for name, col in self._cols.items()})
        return out

    def memory_bytes(self) -> int:
        """RAM of the codes, values and statistics (dictionaries not counted)."""
        return sum(col.nbytes() for col in self._cols.values())

    def values(self, column: str) -> np.ndarray:
        """The decoded values of ``column`` in row order (object array for categoricals)."""
        col = self._column(column)
        if isinstance(col, _Numeric):
            return col.data.copy()
        lookup = np.empty(len(col.values), dtype=object)
        lookup[:] = col.values
        out: np.ndarray = lookup[col.codes]
        return out

    @staticmethod
    def _check_name(name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"attribute column names must be non-empty strings, got {name!r}")

    def _column(self, name: Any) -> _Column:
        if name not in self._cols:
            self._check_name(name)
            known = ", ".join(self.columns) or "none (no attributes were added)"
            raise ValueError(f"filter column {name!r} is unknown; columns: {known}")
        return self._cols[name]

    # ---------------------------------------------------------------- adding
    def add(self, attrs: Mapping[str, Any] | None, n: int) -> None:
        """Append the attributes of ``n`` new rows (validated first; nothing changes on error).

        Args:
            attrs: ``{column: values}`` with ``n`` values per column; every existing column
                must be given. ``None`` only when the store has no columns.
            n: number of rows being added.
        """
        self._append(self._encode(attrs, n), n)

    def _encode(self, attrs: Mapping[str, Any] | None, n: int) -> dict[str, Any]:
        known = self.columns
        if attrs is None:
            if known:
                raise ValueError(
                    f"attrs are required: the index has attribute columns {', '.join(known)}"
                )
            return {}
        if not isinstance(attrs, Mapping):
            raise TypeError(f"attrs must be a dict of column -> values, got {_type_name(attrs)}")
        if known or self._n:
            missing = [c for c in known if c not in attrs]
            if missing:
                raise ValueError(
                    f"attrs is missing column {missing[0]!r}; every add must give all columns: "
                    f"{', '.join(known)}"
                )
            extra = [c for c in attrs if c not in known]
            if extra and (self._n or self._cols):
                raise ValueError(
                    f"attrs has column {extra[0]!r} which the index does not have; the columns "
                    f"are fixed by the first add: {', '.join(known)}"
                )
            if extra and self._declared:
                raise ValueError(
                    f"attrs has column {extra[0]!r} which is not declared; declared: "
                    f"{', '.join(self._declared)}"
                )
        out: dict[str, Any] = {}
        for name, raw in attrs.items():
            self._check_name(name)
            if isinstance(raw, (list, tuple)):
                kinds = {_python_kind(v) for v in raw}
                if len(kinds) > 1 or "other" in kinds:
                    first = _python_kind(raw[0])
                    bad = (
                        raw[0]
                        if first == "other"
                        else next(v for v in raw if _python_kind(v) != first)
                    )
                    raise TypeError(
                        f"attrs[{name!r}] must hold values of one type (str, int, float or "
                        f"bool), got {bad!r} ({_type_name(bad)})"
                    )
            arr = np.asarray(raw)
            if arr.ndim != 1:
                raise ValueError(
                    f"attrs[{name!r}] must be one-dimensional, got shape {tuple(arr.shape)}"
                )
            if arr.shape[0] != n:
                raise ValueError(
                    f"attrs[{name!r}] has {arr.shape[0]} values, expected {n} (one per vector)"
                )
            kind = known.get(name) or self._infer_kind(name, arr)
            if kind == "numeric":
                out[name] = ("numeric", self._encode_numeric(name, arr))
            else:
                col = self._cols.get(name)
                vtype = col.value_type if isinstance(col, _Categorical) else None
                out[name] = ("categorical", *self._encode_categorical(name, arr, vtype))
        return out

    @staticmethod
    def _infer_kind(name: str, arr: np.ndarray) -> ColumnKind:
        if arr.dtype.kind in "iuf":
            return "numeric"
        if arr.dtype.kind in "UbO":
            return "categorical"
        raise TypeError(
            f"attrs[{name!r}] must hold strings, booleans or numbers, got dtype {arr.dtype}"
        )

    @staticmethod
    def _encode_numeric(name: str, arr: np.ndarray) -> F64:
        if arr.dtype.kind == "O" and arr.size and all(_is_number(v) for v in arr):
            arr = arr.astype(np.float64)
        if arr.dtype.kind not in "iuf" and arr.size:
            raise TypeError(
                f"attrs[{name!r}] must hold numbers for numeric column {name!r}, "
                f"got dtype {arr.dtype}"
            )
        vals = arr.astype(np.float64)
        if not np.isfinite(vals).all():
            bad = int(np.flatnonzero(~np.isfinite(vals))[0])
            raise ValueError(f"attrs[{name!r}] must be finite, got {vals[bad]} at row {bad}")
        return vals

    def _encode_categorical(
        self, name: str, arr: np.ndarray, vtype: ValueType | None
    ) -> tuple[I32, list[Any], ValueType]:
        if arr.dtype.kind == "U":
            got: ValueType | None = "str"
            items: np.ndarray = arr
        elif arr.dtype.kind == "b":
            got, items = "bool", arr
        elif arr.dtype.kind in "iu":
            got, items = "int", arr
        elif arr.dtype.kind == "O":
            kinds = {self._value_type(v) for v in arr}
            if None in kinds or len(kinds) > 1:
                bad = next(
                    (v for v in arr if self._value_type(v) != self._value_type(arr[0])), arr[0]
                )
                raise TypeError(
                    f"attrs[{name!r}] must hold values of one type (str, int or bool), "
                    f"got {bad!r} ({_type_name(bad)})"
                )
            got = kinds.pop() if kinds else vtype
            items = (
                arr.astype(str) if got == "str" else arr.astype(np.int64 if got == "int" else bool)
            )
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
        col = self._cols.get(name)
        index = col.index if isinstance(col, _Categorical) else {}
        uniq, inverse = np.unique(items, return_inverse=True)
        new_values: list[Any] = []
        mapped = np.empty(uniq.shape[0], np.int32)
        start = len(index)
        for i, raw in enumerate(uniq.tolist()):
            value = self._python_value(raw, value_type)
            code = index.get(value)
            if code is None:
                code = start + len(new_values)
                new_values.append(value)
            mapped[i] = code
        # First appearance order for new values is not needed: codes only have to be stable.
        return mapped[inverse.reshape(-1)].astype(np.int32), new_values, value_type

    @staticmethod
    def _value_type(value: Any) -> ValueType | None:
        if isinstance(value, (bool, np.bool_)):
            return "bool"
        if isinstance(value, str):
            return "str"
        if isinstance(value, (int, np.integer)):
            return "int"
        return None

    @staticmethod
    def _python_value(raw: Any, value_type: ValueType) -> Any:
        if value_type == "bool":
            return bool(raw)
        if value_type == "int":
            return int(raw)
        return str(raw)

    def _append(self, encoded: dict[str, Any], n: int) -> None:
        for name, item in encoded.items():
            if item[0] == "numeric":
                col = self._cols.get(name)
                if not isinstance(col, _Numeric):
                    col = self._cols[name] = _Numeric()
                col.data = np.concatenate([col.data, item[1]])
                col.changed += n
            else:
                _, codes, new_values, value_type = item
                cat = self._cols.get(name)
                if not isinstance(cat, _Categorical):
                    cat = self._cols[name] = _Categorical(value_type)
                for value in new_values:
                    cat.index[value] = len(cat.values)
                    cat.values.append(value)
                cat.codes = np.concatenate([cat.codes, codes])
                counts = np.bincount(codes, minlength=len(cat.values)).astype(np.int64)
                counts[: cat.counts.shape[0]] += cat.counts
                cat.counts = counts
        self._n += n

    def remove(self, positions: Any) -> None:
        """Delete the rows at sorted unique ``positions``; the others keep their order."""
        pos = np.asarray(positions, dtype=np.int64)
        if not pos.size:
            return
        keep = np.ones(self._n, dtype=bool)
        keep[pos] = False
        for col in self._cols.values():
            if isinstance(col, _Numeric):
                col.data = col.data[keep]
                col.changed += int(pos.size)
            else:
                gone = np.bincount(col.codes[pos], minlength=len(col.values))
                col.counts = col.counts - gone
                col.codes = col.codes[keep]
        self._n = int(keep.sum())

    # ---------------------------------------------------------------- predicates
    def compile(self, filter: Mapping[str, Any] | Predicate) -> Predicate:
        """Check ``filter`` against the columns and resolve its values to codes.

        Raises:
            TypeError: the filter is not a dict, or a value has the wrong type for its column.
            ValueError: unknown column, empty set, a range on a categorical column, a range
                that is not ``(low, high)`` or has ``low > high``.
        """
        if isinstance(filter, Predicate):
            return filter
        if not isinstance(filter, Mapping):
            raise TypeError(
                f"filter must be a dict of column -> condition, got {_type_name(filter)}"
            )
        clauses = []
        for name in sorted(filter, key=str):
            clauses.append(self._clause(name, filter[name]))
        return Predicate(tuple(clauses))

    def _clause(self, name: Any, cond: Any) -> Clause:
        if name in self._declared and name not in self._cols:
            # Declared but no rows yet: nothing can match; still check the form.
            if isinstance(cond, (set, frozenset, list)) and not cond:
                raise ValueError(f"filter[{name!r}] is an empty set; it would match nothing")
            return Clause(str(name), "in")
        col = self._column(name)
        if isinstance(cond, tuple):
            if len(cond) != 2:
                raise ValueError(
                    f"filter[{name!r}] range must be a (low, high) tuple, got {cond!r}"
                )
            if isinstance(col, _Categorical):
                raise ValueError(
                    f"filter[{name!r}] is a range but column {name!r} is categorical; "
                    "use a value or a set of values"
                )
            low, high = (self._number(name, v, allow_none=True) for v in cond)
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
                f"tuple, got {_type_name(cond)}"
            )
        else:
            items = [cond]
        if isinstance(col, _Numeric):
            nums = sorted({cast(float, self._number(name, v)) for v in items})
            return Clause(str(name), "isin", values=tuple(nums))
        codes = set()
        for v in items:
            if self._value_type(v) != col.value_type:
                raise TypeError(
                    f"filter[{name!r}] values must be {col.value_type} for column {name!r}, "
                    f"got {v!r} ({_type_name(v)})"
                )
            code = col.index.get(self._python_value(v, col.value_type))
            if code is not None:
                codes.add(code)
        return Clause(str(name), "in", codes=tuple(sorted(codes)))

    @staticmethod
    def _number(name: Any, value: Any, *, allow_none: bool = False) -> float | None:
        if value is None and allow_none:
            return None
        if not _is_number(value):
            raise TypeError(
                f"filter[{name!r}] values must be numbers for numeric column {name!r}, "
                f"got {value!r} ({_type_name(value)})"
            )
        v = float(value)
        if math.isnan(v):
            raise ValueError(f"filter[{name!r}] must not be NaN")
        return v

    def mask(self, filter: Mapping[str, Any] | Predicate) -> B8:
        """Boolean ``(n,)``: which rows pass ``filter`` (vectorised, one pass per clause)."""
        pred = self.compile(filter)
        out = np.ones(self._n, dtype=bool)
        for clause in pred.clauses if self._n else ():
            out &= self._eval(clause, None)
        return out

    def mask_rows(self, filter: Mapping[str, Any] | Predicate, rows: Any) -> B8:
        """Boolean like ``rows``: whether each row position passes; ``-1`` never passes."""
        pred = self.compile(filter)
        rows = np.asarray(rows, dtype=np.int64)
        valid = rows >= 0
        flat = np.where(valid, rows, 0).reshape(-1)
        out = valid.reshape(-1).copy()
        if self._n == 0:
            out[:] = False
        for clause in pred.clauses if self._n else ():
            out &= self._eval(clause, flat)
        result: B8 = out.reshape(rows.shape)
        return result

    def _eval(self, clause: Clause, rows: npt.NDArray[np.int64] | None) -> B8:
        col = self._cols[clause.column]
        if isinstance(col, _Categorical):
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

    def count(self, filter: Mapping[str, Any] | Predicate) -> int:
        """Exact number of rows passing ``filter`` (evaluates the predicate)."""
        return int(np.count_nonzero(self.mask(filter)))

    def estimate(self, filter: Mapping[str, Any] | Predicate) -> Selectivity:
        """Selectivity of ``filter`` from the column statistics (no scan of the rows)."""
        pred = self.compile(filter)
        n = self._n
        if n == 0:
            return Selectivity(0.0, 0, True)
        frac = 1.0
        for clause in pred.clauses:
            frac *= self._clause_fraction(clause)
        exact = not pred.clauses or (
            len(pred.clauses) == 1 and pred.clauses[0].op == "in"
        )  # fmt: skip
        frac = min(1.0, max(0.0, frac))
        return Selectivity(frac, round(frac * n), exact)

    def _clause_fraction(self, clause: Clause) -> float:
        n = self._n
        col = self._cols[clause.column]
        if isinstance(col, _Categorical):
            return float(col.counts[list(clause.codes)].sum()) / n if clause.codes else 0.0
        q = col.ensure_sketch()
        nd = col.n_distinct
        if clause.op == "range":
            hi = 1.0 if clause.high is None else _cdf(q, clause.high, inclusive=True, n_distinct=nd)
            lo = 0.0 if clause.low is None else _cdf(q, clause.low, inclusive=False, n_distinct=nd)
            return max(0.0, hi - lo)
        total = 0.0
        for v in clause.values:
            mass = _cdf(q, v, inclusive=True, n_distinct=nd) - _cdf(
                q, v, inclusive=False, n_distinct=nd
            )
            inside = q[0] <= v <= q[-1]
            total += max(mass, 1.0 / max(col.n_distinct, 1)) if inside else 0.0
        return min(1.0, total)

    # ---------------------------------------------------------------- persistence
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays (``attr<i>``: codes int32 or values float64) and JSON-safe metadata."""
        arrays: dict[str, np.ndarray] = {}
        cols: list[dict[str, Any]] = []
        for i, (name, col) in enumerate(self._cols.items()):
            if isinstance(col, _Numeric):
                arrays[f"attr{i}"] = col.data
                cols.append({"name": name, "kind": "numeric"})
            else:
                arrays[f"attr{i}"] = col.codes
                cols.append(
                    {
                        "name": name,
                        "kind": "categorical",
                        "value_type": col.value_type,
                        "dictionary": list(col.values),
                    }
                )
        meta = {"n": self._n, "columns": cols, "declared": dict(self._declared)}
        return arrays, meta

    @classmethod
    def from_state(
        cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]
    ) -> AttributeStore:
        """Rebuild a store saved by :meth:`state` (statistics are recomputed)."""
        store = cls(meta.get("declared") or None)
        n = int(meta["n"])
        for i, info in enumerate(meta["columns"]):
            arr = np.asarray(arrays[f"attr{i}"])
            name = str(info["name"])
            if arr.shape != (n,):
                raise ValueError(f"attribute column {name!r} holds {arr.shape}, expected ({n},)")
            if info["kind"] == "numeric":
                num = _Numeric()
                num.data = np.ascontiguousarray(arr, dtype=np.float64)
                store._cols[name] = num
                continue
            value_type = cast(ValueType, check_choice(
                "value_type", info["value_type"], ("bool", "int", "str")
            ))  # fmt: skip
            cat = _Categorical(value_type)
            cat.values = [cls._python_value(v, value_type) for v in info["dictionary"]]
            cat.index = {v: c for c, v in enumerate(cat.values)}
            cat.codes = np.ascontiguousarray(arr, dtype=np.int32)
            if n and (int(cat.codes.min()) < 0 or int(cat.codes.max()) >= len(cat.values)):
                raise ValueError(f"attribute column {name!r} has codes outside its dictionary")
            cat.counts = np.bincount(cat.codes, minlength=len(cat.values)).astype(np.int64)
            store._cols[name] = cat
        store._n = n
        return store
