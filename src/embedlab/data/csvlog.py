"""Generic CTR logs in CSV: a header, one label column, categorical (and dense) columns.

Every column that is not the label, a dense column or dropped is categorical: its
values (text, compared exactly) get a vocabulary as in
:func:`~embedlab.data.criteo.load_criteo`. Dense columns are numbers (a missing
cell is 0.0). The delimiter is a tab if the header holds one, else a comma.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from embedlab._validation import check_int
from embedlab.data._dataset import CTRDataset
from embedlab.data._encode import (
    LogReader,
    PathLike,
    RawChunk,
    at,
    check_file,
    encode_log,
    parse_labels,
)
from embedlab.data._textio import iter_csv_chunks, read_header

__all__ = ["csv_log", "load_csv", "split_names"]


def split_names(option: str, value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Column names given as ``"a|b"`` (a spec option) or a sequence; ``None`` is none."""
    if value is None:
        return ()
    if isinstance(value, str):
        names = [v.strip() for v in value.split("|")] if value.strip() else []
    elif isinstance(value, Sequence):
        names = [str(v).strip() for v in value]
    else:
        names = [str(value).strip()]  # a spec value that parsed as a number
    if any(not n for n in names):
        raise ValueError(f"{option} must name columns separated by '|', got {value!r}")
    return tuple(names)


def csv_log(
    path: Path,
    *,
    label: str = "label",
    dense: str | Sequence[str] | None = None,
    drop: str | Sequence[str] | None = None,
    chunksize: int = 100_000,
    max_rows: int | None = None,
) -> LogReader:
    """The rows of a checked CSV log, in chunks (see :func:`load_csv`)."""
    delimiter, header = read_header(path)
    if not all(header) or len(set(header)) != len(header):
        raise ValueError(
            f"{at(path, 1)}: a CSV log needs a header of unique, non-empty column names, "
            f"got {', '.join(header)}"
        )
    dense_cols, drop_cols = split_names("dense", dense), split_names("drop", drop)
    for option, names in (("label", (str(label),)), ("dense", dense_cols), ("drop", drop_cols)):
        missing = [n for n in names if n not in header]
        if missing:
            raise ValueError(
                f"{option} must name columns of the header of {path}, got {', '.join(missing)}; "
                f"the columns are {', '.join(header)}"
            )
    label = str(label)
    taken = {label, *dense_cols, *drop_cols}
    cat_columns = tuple(c for c in header if c not in taken)
    if not cat_columns:
        raise ValueError(
            f"a CSV log needs at least one categorical column besides label, dense and drop, "
            f"got none in {path}"
        )

    def chunks() -> Iterator[RawChunk]:
        for chunk, linenos in iter_csv_chunks(
            path,
            header,
            delimiter=delimiter,
            has_header=True,
            chunksize=chunksize,
            max_rows=max_rows,
            float_columns=dense_cols,
        ):
            labels = parse_labels(chunk[label].to_numpy(), path=path, linenos=linenos)
            columns = [chunk[c].array for c in cat_columns]
            values = None
            if dense_cols:
                values = np.stack([chunk[c].to_numpy(dtype=np.float64) for c in dense_cols], 1)
                values = np.nan_to_num(values, nan=0.0).astype(np.float32)  # (m, n_dense)
            yield RawChunk(labels, columns, linenos, values)

    return LogReader("csv", path, cat_columns, chunks(), dense_names=dense_cols)


def load_csv(
    path: PathLike,
    *,
    label: str = "label",
    dense: str | Sequence[str] | None = None,
    drop: str | Sequence[str] | None = None,
    min_count: int = 1,
    chunksize: int = 100_000,
    max_rows: int | None = None,
    name: str = "csv",
) -> CTRDataset:
    """Read a CSV click log into one dataset.

    Args:
        path: a CSV (or TSV) file with a header; may be gzip-compressed.
        label: the label column (``1``/``0`` or ``+1``/``-1``).
        dense: numeric columns, ``"a|b"`` or a sequence; a missing cell is 0.0.
        drop: columns to ignore, ``"a|b"`` or a sequence.
        min_count: values seen fewer times share the out-of-vocabulary id 0.
        chunksize: rows read at once.
        max_rows: read only the first ``max_rows`` rows.
        name: ``name`` of the dataset.

    Returns:
        :class:`CTRDataset`: one field per categorical column (header order), id 0
        out of vocabulary and ids ``1..`` by count; ``dense`` ``(n, n_dense)`` if given.

    Example:
        >>> ds = load_csv("clicks.csv", label="click", drop="id")  # doctest: +SKIP
    """
    p = check_file(path, "csv path")
    min_count = check_int("min_count", min_count, min_value=1)
    reader = csv_log(p, label=label, dense=dense, drop=drop, chunksize=chunksize, max_rows=max_rows)
    return encode_log(reader, min_count=min_count, name=name)
