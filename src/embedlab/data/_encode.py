"""Shared pieces of the streaming loaders: label parsing, vocabularies, chunked CSV reading.

Every loader reads its file in chunks and keeps numpy arrays per chunk, never a
Python object per row or per feature; the only Python containers that grow
with the data are the per-column vocabularies (one entry per distinct value).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from embedlab._validation import check_int
from embedlab.data._dataset import CTRDataset
from embedlab.tables._field import Field

__all__ = [
    "NAN_TEXT",
    "ColumnVocab",
    "DataPathError",
    "PathLike",
    "at",
    "check_file",
    "check_path",
    "encode_dataset",
    "iter_csv_chunks",
    "parse_labels",
    "sniff_first_line",
]

PathLike = str | os.PathLike[str]

_POSITIVE = frozenset({"1", "+1", "1.0", "+1.0"})
_NEGATIVE = frozenset({"0", "-1", "0.0", "-1.0", "+0", "-0"})
NAN_TEXT = frozenset({"", "nan", "NaN", "NAN", "NA", "N/A", "null", "NULL", "None"})
_PANDAS_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def at(path: Path, lineno: int) -> str:
    """Where an error is, as ``"path/to/file line 17"``."""
    return f"{path} line {lineno}"


class DataPathError(FileNotFoundError, ValueError):
    """A data path that does not exist (catchable as ``FileNotFoundError`` or ``ValueError``)."""


def check_path(path: PathLike) -> Path:
    """``path`` as a :class:`Path` (``~`` expanded) after checking it exists."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataPathError(f"data path does not exist: {p}")
    return p


def check_file(path: PathLike, what: str) -> Path:
    """``path`` as a :class:`Path` after checking it names an existing regular file."""
    p = check_path(path)
    if not p.is_file():
        raise ValueError(f"{what} must be a file, got directory {p}")
    return p


def parse_labels(values: np.ndarray, *, path: Path, linenos: np.ndarray) -> np.ndarray:
    """Map label strings to float32 {0, 1}: ``1``/``+1`` are clicks, ``0``/``-1`` are not.

    Args:
        values: ``(n,)`` label strings.
        path: the file, for the error message.
        linenos: ``(n,)`` 1-based line number of each value, for the error message.
    """
    uniq, inv = np.unique(np.asarray(values).astype(str), return_inverse=True)
    table = np.empty(len(uniq), dtype=np.float32)
    for k, u in enumerate(uniq.tolist()):
        s = u.strip()
        if s in _POSITIVE:
            table[k] = 1.0
        elif s in _NEGATIVE:
            table[k] = 0.0
        else:
            row = int(np.flatnonzero(inv == k)[0])
            raise ValueError(
                f"{at(path, int(linenos[row]))}: label must be 0/1 or -1/+1, got {u!r}"
            )
    return table[inv.reshape(-1)]


class ColumnVocab:
    """Vocabulary of one column, built while streaming.

    :meth:`add` gives each distinct value a provisional id (order of first
    appearance) and counts it; :meth:`finalize` keeps the values seen at least
    ``min_count`` times, ranked by count (most frequent first, ties by first
    appearance) as ids ``1..n``; id ``0`` is the shared out-of-vocabulary id.

    Example:
        >>> v = ColumnVocab()
        >>> prov = v.add(np.array(["a", "b", "a"], dtype=object))
        >>> remap, card = v.finalize(min_count=2)
        >>> remap[prov].tolist(), card
        ([1, 0, 1], 2)
    """

    def __init__(self) -> None:
        self._index: dict[Any, int] = {}
        self._counts = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._index)

    def add(self, values: np.ndarray) -> np.ndarray:
        """Provisional ids ``(n,)`` int32 of ``values`` ``(n,)`` (strings or integers, no NaN)."""
        codes, uniques = pd.factorize(values, use_na_sentinel=False)  # NaN: a value of its own
        index = self._index
        # one dict lookup per distinct value of the chunk, not per row
        lookup = np.fromiter(
            (index.setdefault(u, len(index)) for u in uniques.tolist()),
            dtype=np.int64,
            count=len(uniques),
        )
        prov = lookup[np.asarray(codes, dtype=np.int64)]
        counts = np.bincount(prov, minlength=len(index))
        counts[: len(self._counts)] += self._counts
        self._counts = counts
        return prov.astype(np.int32)

    def finalize(self, min_count: int) -> tuple[np.ndarray, int]:
        """``(remap, cardinality)``; ``remap[provisional_id]`` is the final id (0: rare value)."""
        counts = self._counts
        kept = np.flatnonzero(counts >= min_count)
        kept = kept[np.argsort(-counts[kept], kind="stable")]
        remap = np.zeros(len(counts), dtype=np.int64)
        remap[kept] = np.arange(1, len(kept) + 1)
        return remap, len(kept) + 1


def sniff_first_line(path: Path) -> tuple[str, list[str]]:
    """``(delimiter, cells)`` of the first line: tab if the line holds one, else comma."""
    with path.open("r", encoding="utf-8", newline="") as f:
        first = f.readline()
    if not first.strip():
        raise ValueError(f"{path} must hold at least one row, got an empty file")
    line = first.rstrip("\r\n")
    delimiter = "\t" if "\t" in line else ","
    return delimiter, [c.strip() for c in line.split(delimiter)]


def _read_csv(
    path: Path,
    columns: Sequence[str],
    *,
    delimiter: str,
    has_header: bool,
    chunksize: int,
    max_rows: int | None,
    float_columns: Sequence[str],
) -> Any:
    return pd.read_csv(
        path,
        sep=delimiter,
        header=None,
        names=list(columns),
        skiprows=1 if has_header else 0,
        dtype={c: (np.float64 if c in float_columns else str) for c in columns},
        keep_default_na=False,
        na_values={c: sorted(NAN_TEXT) for c in float_columns},
        skip_blank_lines=False,
        chunksize=chunksize,
        nrows=max_rows,
        engine="c",
    )


def iter_csv_chunks(
    path: Path,
    columns: Sequence[str],
    *,
    delimiter: str,
    has_header: bool,
    chunksize: int,
    max_rows: int | None,
    float_columns: Sequence[str] = (),
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Yield ``(chunk, linenos)``: the columns, and the 1-based file line of each row.

    ``float_columns`` are parsed as float64 by the C parser (missing or
    :data:`NAN_TEXT` cells are NaN; any other text raises ``ValueError`` naming
    the line); the other columns are strings, missing cells empty strings.
    Wholly empty lines are dropped. A row with more cells than ``columns``
    raises ``ValueError`` naming the line; a row with fewer cells gets missing
    trailing cells.
    """
    chunksize = check_int("chunksize", chunksize, min_value=1)
    if max_rows is not None:
        max_rows = check_int("max_rows", max_rows, min_value=1)
    kwargs: dict[str, Any] = dict(delimiter=delimiter, has_header=has_header, max_rows=max_rows)
    reader = _read_csv(path, columns, chunksize=chunksize, float_columns=float_columns, **kwargs)
    first = 2 if has_header else 1
    seen = 0
    try:
        for chunk in reader:
            linenos = np.arange(first + seen, first + seen + len(chunk), dtype=np.int64)
            seen += len(chunk)
            # a blank line reads as a row of missing cells; test the first column, then the rest
            maybe = np.flatnonzero(_missing(chunk[columns[0]]))
            if len(maybe):
                rows = chunk.iloc[maybe]
                blank = np.all([_missing(rows[c]) for c in columns], axis=0)
                if blank.any():
                    keep = np.ones(len(chunk), dtype=bool)
                    keep[maybe[blank]] = False
                    chunk, linenos = chunk.loc[keep], linenos[keep]
            if len(chunk):
                yield chunk, linenos
    except pd.errors.ParserError as e:
        m = _PANDAS_FIELDS.search(str(e))
        if m is None:
            raise ValueError(f"{path}: cannot parse as CSV: {e}") from None
        expected, line, got = m.groups()
        raise ValueError(f"{at(path, int(line))}: expected {expected} columns, got {got}") from None
    except ValueError:
        if not float_columns:
            raise
        # the C parser does not say where a number failed: find it again as text (error path only)
        _raise_bad_number(path, columns, float_columns, chunksize=chunksize, **kwargs)
        raise


def _missing(column: pd.Series) -> np.ndarray:
    if column.dtype.kind == "f":
        return np.asarray(column.isna().to_numpy(), dtype=bool)
    return np.asarray((column == "").to_numpy(), dtype=bool)


def _raise_bad_number(
    path: Path,
    columns: Sequence[str],
    float_columns: Sequence[str],
    *,
    chunksize: int,
    **kwargs: Any,
) -> None:
    """Raise ``ValueError`` at the first cell of ``float_columns`` that is not a number."""
    first = 2 if kwargs["has_header"] else 1
    seen = 0
    for chunk in _read_csv(path, columns, chunksize=chunksize, float_columns=(), **kwargs):
        for col in float_columns:
            text = chunk[col]
            bad = pd.to_numeric(text, errors="coerce").isna() & ~text.isin(NAN_TEXT)
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise ValueError(
                    f"{at(path, first + seen + row)}: {col} must be a number or empty, "
                    f"got {text.iloc[row]!r}"
                )
        seen += len(chunk)


def encode_dataset(
    labels: list[np.ndarray],
    provisional: list[np.ndarray],
    vocabs: list[ColumnVocab],
    names: tuple[str, ...],
    min_count: int,
    name: str,
    *,
    fixed: Mapping[str, int] | None = None,
) -> CTRDataset:
    """Build the dataset from per-chunk labels ``(m,)`` and provisional ids ``(m, n_fields)``.

    The leading ``len(fixed)`` columns already hold final ids of fixed
    cardinality (e.g. hour of day, 24); the others are remapped through their
    vocabulary, values rarer than ``min_count`` becoming id 0.
    """
    fixed = dict(fixed or {})
    fields = [Field(col, card) for col, card in fixed.items()]
    # one flat lookup table: column j's provisional id p is at offsets[j] + p
    tables = [np.arange(card, dtype=np.int64) for card in fixed.values()]
    for col, vocab in zip(names[len(fixed) :], vocabs, strict=True):
        remap, card = vocab.finalize(min_count)
        tables.append(remap)
        fields.append(Field(col, card))
    offsets = np.cumsum([0] + [len(t) for t in tables[:-1]], dtype=np.int64)
    flat = np.concatenate(tables)
    n = sum(len(p) for p in provisional)
    ids = np.empty((n, len(fields)), dtype=np.int64)
    start = 0
    while provisional:
        chunk = provisional.pop(0)  # (m, n_fields), freed as we go
        ids[start : start + len(chunk)] = flat[chunk + offsets]
        start += len(chunk)
    return CTRDataset(ids=ids, labels=np.concatenate(labels), fields=tuple(fields), name=name)
