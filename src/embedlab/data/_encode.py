"""Shared pieces of the streaming loaders: paths, label parsing, vocabularies, encoding.

Every loader reads its file in chunks and keeps numpy arrays per chunk, never a
Python object per row or per feature; the only Python containers that grow
with the data are the per-column vocabularies (one entry per distinct value).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from embedlab.data._dataset import CTRDataset
from embedlab.fields import Field

__all__ = [
    "NAN_TEXT",
    "ColumnVocab",
    "DataPathError",
    "LogReader",
    "PathLike",
    "RawChunk",
    "at",
    "check_file",
    "check_path",
    "encode_dataset",
    "encode_log",
    "parse_labels",
]

PathLike = str | os.PathLike[str]

_POSITIVE = frozenset({"1", "+1", "1.0", "+1.0"})
_NEGATIVE = frozenset({"0", "-1", "0.0", "-1.0", "+0", "-0"})
NAN_TEXT = frozenset({"", "nan", "NaN", "NAN", "NA", "N/A", "null", "NULL", "None"})


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
    if p.is_dir():
        raise ValueError(f"{what} must be a file, got directory {p}")
    if not p.is_file():
        raise ValueError(f"{what} must be a regular file, got {p}")
    return p


def parse_labels(values: np.ndarray, *, path: Path, linenos: np.ndarray) -> np.ndarray:
    """Map label strings to float32 {0, 1}: ``1``/``+1`` are clicks, ``0``/``-1`` are not.

    Args:
        values: ``(n,)`` label strings.
        path: the file, for the error message.
        linenos: ``(n,)`` 1-based line number of each value, for the error message.
    """
    # factorize, not np.unique on fixed-width strings: one long cell must not widen every row
    codes, uniq = pd.factorize(np.asarray(values, dtype=object).reshape(-1), use_na_sentinel=False)
    table = np.empty(len(uniq), dtype=np.float32)
    for k, u in enumerate(uniq.tolist()):
        s = str(u).strip()
        if s in _POSITIVE:
            table[k] = 1.0
        elif s in _NEGATIVE:
            table[k] = 0.0
        else:
            row = int(np.flatnonzero(codes == k)[0])
            raise ValueError(
                f"{at(path, int(linenos[row]))}: label must be 0/1 or -1/+1, got {str(u)!r}"
            )
    return np.asarray(table[codes], dtype=np.float32)


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


@dataclass(frozen=True)
class RawChunk:
    """A block of rows of a log, before any vocabulary.

    Args:
        labels: ``(m,)`` float32 in {0, 1}.
        columns: one ``(m,)`` array per field: the final ids (int64) of a fixed
            field; int64 values (e.g. Criteo count buckets, libFM indices) or
            strings (a pandas string array, or object) of a field that gets a vocabulary.
        linenos: ``(m,)`` the 1-based file line of each row, for error messages.
        dense: optional ``(m, n_dense)`` float32 numeric features.
    """

    labels: np.ndarray
    columns: list[np.ndarray]
    linenos: np.ndarray
    dense: np.ndarray | None = None


@dataclass(frozen=True)
class LogReader:
    """A log file opened for reading in chunks: its layout and the chunks to come.

    The formats (Criteo, Avazu, libFM, CSV) each parse in one place and hand out
    a ``LogReader``; the in-memory loaders (:func:`encode_log`) and the streamed
    ``prepare`` consume the same chunks, so both see the same values.

    Args:
        kind: the format, for messages (``"criteo"``).
        path: the (first) file.
        names: one name per field.
        chunks: the rows, one :class:`RawChunk` at a time.
        fixed: the leading fields whose values are final ids, with their cardinality.
        dense_names: names of the ``dense`` columns (empty: no dense features).
        order: how vocabulary ids are assigned: ``"count"`` (id 0 is out of
            vocabulary, kept values by count, ties by first appearance) or
            ``"index"`` (kept values by value, as libFM's global indices).
    """

    kind: str
    path: Path
    names: tuple[str, ...]
    chunks: Iterator[RawChunk] = field(repr=False)
    fixed: Mapping[str, int] = field(default_factory=dict)
    dense_names: tuple[str, ...] = ()
    order: Literal["count", "index"] = "count"


def encode_log(reader: LogReader, *, min_count: int, name: str) -> CTRDataset:
    """Read every chunk of ``reader`` into one in-memory dataset (``"count"`` order)."""
    n_fixed = len(reader.fixed)
    vocabs = [ColumnVocab() for _ in reader.names[n_fixed:]]
    labels: list[np.ndarray] = []
    dense: list[np.ndarray] = []
    provisional: list[np.ndarray] = []
    for raw in reader.chunks:
        labels.append(raw.labels)
        prov = np.empty((len(raw.labels), len(reader.names)), dtype=np.int32)  # (m, n_fields)
        for j, values in enumerate(raw.columns):
            prov[:, j] = values if j < n_fixed else vocabs[j - n_fixed].add(values)
        provisional.append(prov)
        if raw.dense is not None:
            dense.append(raw.dense)
    if not labels:
        raise ValueError(
            f"{reader.kind} file must hold at least one data row, got none: {reader.path}"
        )
    ds = encode_dataset(
        labels, provisional, vocabs, reader.names, min_count, name, fixed=reader.fixed
    )
    if dense:
        return dataclasses.replace(ds, dense=np.concatenate(dense))
    return ds
