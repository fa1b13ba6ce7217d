"""Criteo display-advertising logs (Kaggle 2014 / Terabyte layout).

A row is ``label, I1..I13, C1..C26``: 13 integer counts and 26 hashed
categorical values (8 hex digits), any of which may be missing. The raw
Kaggle file is tab-separated without a header; a CSV with a ``label,I1,...``
header (as in the shared sample) is read too.

Integer columns are turned into categories with the rule of the 2014 Kaggle
winners (Juan et al., "Field-aware Factorization Machines in a Real-world
Online Advertising System", and FuxiCTR / BARS): ``v > 2 -> floor(ln(v)^2)``,
else ``trunc(v)`` (negative values are their own buckets); a missing value is
its own bucket. Every column then gets a vocabulary: values seen fewer than
``min_count`` times share the out-of-vocabulary id 0.
"""

from __future__ import annotations

from collections.abc import Iterator
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

__all__ = [
    "CAT_COLUMNS",
    "CRITEO_COLUMNS",
    "INT_COLUMNS",
    "MISSING_BUCKET",
    "bucketize_counts",
    "criteo_log",
    "load_criteo",
]

INT_COLUMNS: tuple[str, ...] = tuple(f"I{i}" for i in range(1, 14))
CAT_COLUMNS: tuple[str, ...] = tuple(f"C{i}" for i in range(1, 27))
CRITEO_COLUMNS: tuple[str, ...] = ("label", *INT_COLUMNS, *CAT_COLUMNS)

# bucket of a missing integer value; real buckets are >= floor(min value)
MISSING_BUCKET = np.iinfo(np.int64).min
_LOWEST = -(2.0**53)


def bucketize_counts(values: np.ndarray) -> np.ndarray:
    """Bucket ids of integer features by the log-squared rule.

    Args:
        values: ``(n,)`` float64, NaN or infinity for missing.

    Returns:
        ``(n,)`` int64: ``floor(ln(v)^2)`` for ``v > 2``, ``trunc(v)`` otherwise
        (values below ``-2**53`` share the bucket ``-2**53``), and
        :data:`MISSING_BUCKET` for non-finite values.

    Example:
        >>> bucketize_counts(np.array([np.nan, -3.0, 0.0, 2.0, 3.0, 1000.0])).tolist()[1:]
        [-3, 0, 2, 1, 47]
    """
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    safe = np.where(finite, v, 0.0)
    big = safe > 2.0
    # the floor keeps trunc() inside int64: -1e20 must not become the missing bucket
    small = np.trunc(np.maximum(safe, _LOWEST))
    out = np.where(big, np.floor(np.log(np.where(big, safe, 3.0)) ** 2), small)
    return np.where(finite, out, MISSING_BUCKET).astype(np.int64)


def _detect_layout(path: Path, delimiter: str, cells: list[str]) -> bool:
    """Whether the first line is a header; checks it has the 40 Criteo columns."""
    if len(cells) != len(CRITEO_COLUMNS):
        raise ValueError(
            f"{at(path, 1)}: expected {len(CRITEO_COLUMNS)} columns "
            f"(label, I1..I13, C1..C26) separated by {delimiter!r}, got {len(cells)}"
        )
    first = cells[0].strip().lower()
    if first in ("0", "1", "0.0", "1.0", "-1", "+1"):
        return False
    names = [c.strip().lower() for c in cells]
    if names != [c.lower() for c in CRITEO_COLUMNS]:
        raise ValueError(
            f"{at(path, 1)}: a Criteo header must be label, I1..I13, C1..C26, "
            f"got {', '.join(cells[:4])}, ..."
        )
    return True


def criteo_log(path: Path, *, chunksize: int, max_rows: int | None) -> LogReader:
    """The rows of a checked Criteo file, in chunks: 13 count buckets, then 26 strings."""
    delimiter, cells = read_header(path)
    has_header = _detect_layout(path, delimiter, cells)

    def chunks() -> Iterator[RawChunk]:
        for chunk, linenos in iter_csv_chunks(
            path,
            CRITEO_COLUMNS,
            delimiter=delimiter,
            has_header=has_header,
            chunksize=chunksize,
            max_rows=max_rows,
            float_columns=INT_COLUMNS,
        ):
            labels = parse_labels(chunk["label"].to_numpy(), path=path, linenos=linenos)
            columns = [bucketize_counts(chunk[c].to_numpy(dtype=np.float64)) for c in INT_COLUMNS]
            columns += [chunk[c].array for c in CAT_COLUMNS]
            yield RawChunk(labels, columns, linenos)

    return LogReader("criteo", path, INT_COLUMNS + CAT_COLUMNS, chunks())


def load_criteo(
    path: PathLike,
    *,
    min_count: int = 10,
    chunksize: int = 500_000,
    max_rows: int | None = None,
    name: str = "criteo",
) -> CTRDataset:
    """Read a Criteo file into one dataset with 39 fields ``I1..I13, C1..C26``.

    The file is read once, in chunks of ``chunksize`` rows, so files of many
    GB fit as long as the ``(n, 39)`` id matrix does; only the per-column
    vocabularies are Python dicts. The missing value of a column is a token
    like any other (its own id when at least ``min_count`` rows miss it).

    Args:
        path: TSV (raw Kaggle, no header) or CSV with a ``label,I1,...,C26`` header.
        min_count: values seen fewer times share id 0 (out of vocabulary).
        chunksize: rows read at once.
        max_rows: read only the first ``max_rows`` rows.
        name: ``name`` of the dataset.

    Returns:
        :class:`CTRDataset` with ``ids`` ``(n, 39)`` int64; in each field, id 0
        is out-of-vocabulary and ids ``1..`` rank the kept values by count.

    Example:
        >>> ds = load_criteo("train.txt", min_count=10, max_rows=1_000_000)  # doctest: +SKIP
        >>> ds.ids.shape  # doctest: +SKIP
        (1000000, 39)
    """
    p = check_file(path, "criteo path")
    min_count = check_int("min_count", min_count, min_value=1)
    reader = criteo_log(p, chunksize=chunksize, max_rows=max_rows)
    return encode_log(reader, min_count=min_count, name=name)
