"""Strict reading of text data files: a bad byte, row or cell names its file and line.

A row is one line. The loaders' formats (libFM, Criteo, Avazu, MovieLens) never
need a quoted field that spans lines, so line numbers are exact: a row that
does not fit is reported where a text editor shows it. Files are read as bytes
in blocks of lines and decoded as UTF-8 here, so invalid bytes raise
``ValueError("f.csv line 9: not valid UTF-8 (byte 0xff at column 3)")``
instead of a bare ``UnicodeDecodeError`` somewhere inside pandas. A gzip file
(recognised by its magic bytes, whatever its name) is decompressed on the fly;
a truncated or corrupt stream raises ``ValueError`` naming the file.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import itertools
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from embedlab._io import open_maybe_gzip
from embedlab._validation import check_int
from embedlab.data._encode import NAN_TEXT, at

__all__ = [
    "decode_utf8",
    "iter_csv_chunks",
    "iter_line_blocks",
    "iter_text_lines",
    "read_header",
]

_BOM = b"\xef\xbb\xbf"


def decode_utf8(path: Path, data: bytes, first_lineno: int) -> str:
    """``data`` (lines starting at ``first_lineno``) as text; bad bytes name their line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        lineno = first_lineno + data.count(b"\n", 0, exc.start)
        raise ValueError(
            f"{at(path, lineno)}: not valid UTF-8 text "
            f"(byte 0x{data[exc.start]:02x} at column {exc.start - line_start + 1})"
        ) from None


@contextlib.contextmanager
def _gzip_errors(path: Path, lineno: int) -> Iterator[None]:
    try:
        yield
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ValueError(
            f"{path} is not a valid gzip file: the stream is truncated or corrupt "
            f"near line {lineno} ({exc})"
        ) from None


def iter_line_blocks(path: Path, chunk_lines: int) -> Iterator[tuple[int, list[bytes]]]:
    """Yield ``(first_lineno, lines)``: up to ``chunk_lines`` raw lines (with their ``\\n``).

    A UTF-8 byte-order mark at the start of the file is dropped; gzip is decompressed.
    """
    with open_maybe_gzip(path) as f:
        lineno = 1
        while True:
            with _gzip_errors(path, lineno):
                lines = list(itertools.islice(f, chunk_lines))
            if not lines:
                return
            if lineno == 1 and lines[0].startswith(_BOM):
                lines[0] = lines[0][len(_BOM) :]
            yield lineno, lines
            lineno += len(lines)


def iter_text_lines(path: Path, chunk_lines: int) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(first_lineno, lines)``: decoded lines without their line ending."""
    for first, raw in iter_line_blocks(path, chunk_lines):
        text = decode_utf8(path, b"".join(raw), first)
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()  # the empty piece after the last line ending
        yield first, [line.removesuffix("\r") for line in lines]


def read_header(
    path: Path, *, delimiter: str | None = None, quoting: bool = False
) -> tuple[str, list[str]]:
    """``(delimiter, cells)`` of the first line; the delimiter is a tab if the line holds one.

    With ``quoting``, a quoted cell (``"title, with comma"``) is one cell.
    """
    with open_maybe_gzip(path) as f, _gzip_errors(path, 1):
        raw = f.readline()
    text = decode_utf8(path, raw.removeprefix(_BOM), 1).rstrip("\r\n")
    if not raw:
        raise ValueError(f"{path} must hold at least one row, got an empty file")
    if not text.strip():
        raise ValueError(f"{at(path, 1)}: expected a header or a first row, got a blank line")
    if delimiter is None:
        delimiter = "\t" if "\t" in text else ","
    cells = _split_line(path, 1, text, delimiter) if quoting else text.split(delimiter)
    return delimiter, [c.strip() for c in cells]


def _split_line(path: Path, lineno: int, line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter, strict=True))
    except (csv.Error, StopIteration) as exc:
        raise ValueError(f"{at(path, lineno)}: cannot read as CSV ({exc})") from None


def iter_csv_chunks(
    path: Path,
    columns: Sequence[str],
    *,
    delimiter: str,
    has_header: bool,
    chunksize: int,
    max_rows: int | None,
    float_columns: Sequence[str] = (),
    quoting: bool = False,
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """Yield ``(chunk, linenos)``: the columns, and the 1-based file line of each row.

    Every non-blank line must hold exactly ``len(columns)`` cells, else
    ``ValueError("f.csv line 7: expected 40 columns, got 39")``. ``float_columns``
    are float64 (missing or :data:`NAN_TEXT` cells are NaN; text or an infinite
    value raises naming the line); the other columns are strings. Blank lines,
    and rows whose cells are all missing, are dropped. With ``quoting``, a cell
    may be quoted (``"Toy Story, The (1995)"``) as in RFC 4180, except that a
    quoted cell cannot span lines; without it, a quote is an ordinary character.
    """
    chunksize = check_int("chunksize", chunksize, min_value=1)
    if max_rows is not None:
        max_rows = check_int("max_rows", max_rows, min_value=1)
    remaining = max_rows
    for first, raw in iter_line_blocks(path, chunksize):
        if has_header and first == 1:
            raw, first = raw[1:], 2
        text = decode_utf8(path, b"".join(raw), first)
        if quoting and '"' in text:
            chunk, linenos = _parse_quoted(path, text, first, columns, delimiter)
        else:
            chunk, linenos = _parse_plain(path, raw, first, columns, delimiter, float_columns)
        if remaining is not None:
            chunk, linenos = chunk.iloc[:remaining], linenos[:remaining]
            remaining -= len(linenos)
        for col in float_columns:
            chunk[col] = _float_column(path, chunk[col], col, linenos)
        # a row of missing cells (",,,"): test the first column, then the rest of those rows
        maybe = np.flatnonzero(_missing(chunk[columns[0]]))
        if len(maybe):
            rows = chunk.iloc[maybe]
            empty = np.all([_missing(rows[c]) for c in columns], axis=0)
            if empty.any():
                keep = np.ones(len(chunk), dtype=bool)
                keep[maybe[empty]] = False
                chunk, linenos = chunk.loc[keep], linenos[keep]
        if len(chunk):
            yield chunk, linenos
        if remaining == 0:
            return


def _parse_plain(
    path: Path,
    raw: list[bytes],
    first: int,
    columns: Sequence[str],
    delimiter: str,
    float_columns: Sequence[str],
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of lines without quoting: count the delimiters, then let pandas' C parser read."""
    sep = delimiter.encode()
    counts = np.fromiter(map(bytes.count, raw, itertools.repeat(sep)), np.int64, len(raw))
    suspect = np.flatnonzero(counts != len(columns) - 1)
    blank = np.zeros(len(raw), dtype=bool)
    for k in suspect.tolist():
        if raw[k].strip(b"\r\n"):
            raise ValueError(
                f"{at(path, first + k)}: expected {len(columns)} columns, got {counts[k] + 1}"
            )
        blank[k] = True
    linenos = first + np.flatnonzero(~blank)
    if len(linenos) == 0:
        return pd.DataFrame({c: np.zeros(0, dtype=object) for c in columns}), linenos
    block = b"".join(line for line, b in zip(raw, blank.tolist(), strict=True) if not b)
    block = block.replace(b"\r\n", b"\n")

    def read(floats: Sequence[str]) -> pd.DataFrame:
        return pd.read_csv(
            io.BytesIO(block),
            sep=delimiter,
            header=None,
            names=list(columns),
            # object, not str: pandas 3's arrow-backed str costs 3x the parse itself
            dtype={c: (np.float64 if c in floats else object) for c in columns},
            keep_default_na=False,
            na_values={c: sorted(NAN_TEXT) for c in floats},
            skip_blank_lines=False,
            quoting=csv.QUOTE_NONE,
            lineterminator="\n",
            engine="c",
            encoding="utf-8",
        )

    try:
        frame = read(float_columns)
    except ValueError:
        if not float_columns:
            raise
        # the C parser does not say which cell is not a number: read as text to find it
        frame = read(())
    if len(frame) != len(linenos):  # pragma: no cover - one row per line is checked above
        raise ValueError(f"{path}: read {len(frame)} rows from {len(linenos)} lines")
    return frame, linenos


def _parse_quoted(
    path: Path, text: str, first: int, columns: Sequence[str], delimiter: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of lines that may hold quoted cells, one line at a time with the csv module."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    rows: list[list[str]] = []
    linenos: list[int] = []
    for k, line in enumerate(lines):
        line = line.removesuffix("\r")
        if not line:
            continue
        cells = _split_line(path, first + k, line, delimiter)
        if len(cells) != len(columns):
            raise ValueError(
                f"{at(path, first + k)}: expected {len(columns)} columns, got {len(cells)}"
            )
        rows.append(cells)
        linenos.append(first + k)
    frame = pd.DataFrame(rows, columns=list(columns), dtype=object)
    return frame, np.asarray(linenos, dtype=np.int64)


def _float_column(path: Path, cells: pd.Series, col: str, linenos: np.ndarray) -> Any:
    """``cells`` as float64 (already numbers, or text); text or infinity raises with its line."""
    if cells.dtype.kind == "f":
        values = cells.to_numpy(dtype=np.float64)
        text = None
    else:
        text = cells.astype(str).str.strip()
        missing = text.isin(NAN_TEXT).to_numpy()
        values = pd.to_numeric(text.where(~missing), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        bad = np.isnan(values) & ~missing
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{at(path, int(linenos[row]))}: {col} must be a number or empty, "
                f"got {cells.iloc[row]!r}"
            )
    infinite = np.isinf(values)
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        shown = repr(cells.iloc[row]) if text is not None else str(values[row])
        raise ValueError(
            f"{at(path, int(linenos[row]))}: {col} must be a finite number or empty, got {shown}"
        )
    return values


def _missing(column: pd.Series) -> np.ndarray:
    if column.dtype.kind == "f":
        return np.asarray(np.isnan(column.to_numpy(dtype=np.float64)), dtype=bool)
    return np.asarray((column.fillna("") == "").to_numpy(), dtype=bool)
