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

from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from embedlab._validation import check_choice
from embedlab.index._attr_clauses import (
    Clause,
    Predicate,
    Selectivity,
    clause_fraction,
    eval_clause,
    make_clause,
)
from embedlab.index._attr_columns import (
    B8,
    Categorical,
    Column,
    ColumnKind,
    Numeric,
    ValueType,
    encode_categorical,
    encode_numeric,
    infer_kind,
    python_kind,
    python_value,
    type_name,
)

__all__ = [
    "COLUMN_KINDS",
    "AttributeStore",
    "Clause",
    "ColumnKind",
    "Predicate",
    "Selectivity",
]

COLUMN_KINDS: tuple[str, ...] = ("categorical", "numeric")


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
        self._cols: dict[str, Column] = {}
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
        if isinstance(col, Numeric):
            return col.data.copy()
        lookup = np.empty(len(col.values), dtype=object)
        lookup[:] = col.values
        out: np.ndarray = lookup[col.codes]
        return out

    @staticmethod
    def _check_name(name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"attribute column names must be non-empty strings, got {name!r}")

    def _column(self, name: Any) -> Column:
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
            raise TypeError(f"attrs must be a dict of column -> values, got {type_name(attrs)}")
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
                kinds = {python_kind(v) for v in raw}
                if len(kinds) > 1 or "other" in kinds:
                    first = python_kind(raw[0])
                    bad = (
                        raw[0]
                        if first == "other"
                        else next(v for v in raw if python_kind(v) != first)
                    )
                    raise TypeError(
                        f"attrs[{name!r}] must hold values of one type (str, int, float or "
                        f"bool), got {bad!r} ({type_name(bad)})"
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
            kind = known.get(name) or infer_kind(name, arr)
            if kind == "numeric":
                out[name] = ("numeric", encode_numeric(name, arr))
            else:
                col = self._cols.get(name)
                vtype = col.value_type if isinstance(col, Categorical) else None
                index = col.index if isinstance(col, Categorical) else {}
                out[name] = ("categorical", *encode_categorical(name, arr, vtype, index))
        return out

    def _append(self, encoded: dict[str, Any], n: int) -> None:
        for name, item in encoded.items():
            if item[0] == "numeric":
                col = self._cols.get(name)
                if not isinstance(col, Numeric):
                    col = self._cols[name] = Numeric()
                col.data = np.concatenate([col.data, item[1]])
                col.changed += n
            else:
                _, codes, new_values, value_type = item
                cat = self._cols.get(name)
                if not isinstance(cat, Categorical):
                    cat = self._cols[name] = Categorical(value_type)
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
            if isinstance(col, Numeric):
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
                f"filter must be a dict of column -> condition, got {type_name(filter)}"
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
        return make_clause(name, cond, self._column(name))

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
        return eval_clause(self._cols[clause.column], clause, rows)

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
        return clause_fraction(self._cols[clause.column], clause, self._n)

    # ---------------------------------------------------------------- persistence
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Arrays (``attr<i>``: codes int32 or values float64) and JSON-safe metadata."""
        arrays: dict[str, np.ndarray] = {}
        cols: list[dict[str, Any]] = []
        for i, (name, col) in enumerate(self._cols.items()):
            if isinstance(col, Numeric):
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
                num = Numeric()
                num.data = np.ascontiguousarray(arr, dtype=np.float64)
                store._cols[name] = num
                continue
            value_type = cast(ValueType, check_choice(
                "value_type", info["value_type"], ("bool", "int", "str")
            ))  # fmt: skip
            cat = Categorical(value_type)
            cat.values = [python_value(v, value_type) for v in info["dictionary"]]
            cat.index = {v: c for c, v in enumerate(cat.values)}
            cat.codes = np.ascontiguousarray(arr, dtype=np.int32)
            if n and (int(cat.codes.min()) < 0 or int(cat.codes.max()) >= len(cat.values)):
                raise ValueError(f"attribute column {name!r} has codes outside its dictionary")
            cat.counts = np.bincount(cat.codes, minlength=len(cat.values)).astype(np.int64)
            store._cols[name] = cat
        store._n = n
        return store
