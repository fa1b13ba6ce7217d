"""Vectorised parsing of edge lists (the common case of :func:`embedlab.graph.load_edgelist`).

Files of two integer columns and at least 4 MiB go through a one-pass numba kernel
(:mod:`embedlab.graph._edgekernel`); the rest through numpy as below.

:func:`parse_fast` handles files with no comments, the same number of fields (2 or 3)
on every non-blank line and finite positive weights. Integer ids (plain ASCII digits,
at most 18 of them) are parsed straight from the bytes; other ids come back as strings.
Anything else returns ``None`` and the caller falls back to the line-by-line reader,
which produces the same graph or the error that names the bad line (a test checks the
two paths against each other).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedlab.graph._edgekernel import MIN_BYTES, parse_int_pairs

__all__ = ["ParsedEdges", "int_rows", "parse_fast"]

_SEPARATORS = b" \t\r,\n\v\f"
_MAX_DIGITS = 18  # below 10**18: fits int64 with room
_SEP_TABLE = np.zeros(256, dtype=bool)
_SEP_TABLE[list(_SEPARATORS)] = True
_DIGIT_TABLE = np.zeros(256, dtype=bool)
_DIGIT_TABLE[list(b"0123456789")] = True
_POW10 = 10 ** np.arange(_MAX_DIGITS, dtype=np.int64)


@dataclass
class ParsedEdges:
    """Edges as parsed: rows of each end (integer ids) or the ids as text, and weights."""

    rows: tuple[np.ndarray, np.ndarray, list[str] | None] | None
    src: list[str]
    dst: list[str]
    weights: np.ndarray | None


def parse_fast(raw: bytes) -> ParsedEdges | None:
    """The edges of a plain edge list, or ``None`` for the line-by-line reader."""
    if b"#" in raw or not raw.strip():
        return None
    if len(raw) >= MIN_BYTES:
        pairs = parse_int_pairs(raw)
        if pairs is not None:
            pair_rows = _rows_of_values(pairs[:, 0], pairs[:, 1])
            return ParsedEdges(rows=pair_rows, src=[], dst=[], weights=None)
    arr = np.frombuffer(raw, dtype=np.uint8)
    ascii_only = not bool((arr >= 128).any())
    if not ascii_only:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    sep = _SEP_TABLE[arr]
    token = ~sep
    starts = np.flatnonzero(token & np.concatenate(([True], sep[:-1])))
    ends = np.flatnonzero(token & np.concatenate((sep[1:], [True]))) + 1
    newlines = np.flatnonzero(arr == ord("\n"))
    per_line = np.bincount(np.searchsorted(newlines, starts))
    per_line = per_line[per_line > 0]
    width = int(per_line[0])
    if width not in (2, 3) or bool((per_line != width).any()):
        return None
    weights = None
    texts: list[str] | None = None
    if width == 3 or not ascii_only:
        texts = raw.decode("utf-8").replace(",", " ").split()
        if len(texts) != len(starts):  # separators outside ASCII: let the slow path judge
            return None
    if width == 3 and texts is not None:
        try:
            weights = np.asarray(texts[2::3]).astype(np.float64)
        except ValueError:
            return None
        if not bool(np.all(np.isfinite(weights) & (weights > 0))):
            return None
    is_id = np.arange(len(starts)) % width != 2
    rows = _int_ids(arr, starts, ends, is_id) if ascii_only else None
    if rows is not None:
        return ParsedEdges(rows=rows, src=[], dst=[], weights=weights)
    if texts is None:
        texts = raw.decode("utf-8").replace(",", " ").split()
    return ParsedEdges(rows=None, src=texts[0::width], dst=texts[1::width], weights=weights)


def _int_ids(
    arr: np.ndarray, starts: np.ndarray, ends: np.ndarray, is_id: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str] | None] | None:
    """Rows of the ``(src, dst)`` id tokens (``is_id``) when all are plain integers."""
    bad = np.flatnonzero(~_DIGIT_TABLE[arr] & ~_SEP_TABLE[arr])
    if len(bad) and bool(is_id[np.searchsorted(starts, bad, side="right") - 1].any()):
        return None
    starts, ends = starts[is_id], ends[is_id]
    lengths = ends - starts
    longest = int(lengths.max())
    if longest > _MAX_DIGITS:
        return None
    # each id's digits, the last one first: value = sum(digit_j * 10**j)
    offsets = np.arange(longest)
    pos = ends[:, None] - 1 - offsets[None, :]
    valid = offsets[None, :] < lengths[:, None]
    digits = np.where(valid, arr[np.where(valid, pos, 0)].astype(np.int64) - ord("0"), 0)
    values = digits @ _POW10[:longest]
    return _rows_of_values(values[0::2], values[1::2])


def _rows_of_values(
    src: np.ndarray, dst: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    both = np.concatenate([src, dst])
    top = int(both.max())
    if top < 4 * len(both) + 1024:  # a lookup table bounded by the data's size
        present = np.zeros(top + 1, dtype=bool)
        present[both] = True
        ids = np.flatnonzero(present)
        row_of = np.cumsum(present, dtype=np.int64) - 1
        inverse = row_of[both]
    else:
        ids, inverse = np.unique(both, return_inverse=True)
    m = len(src)
    dense = int(ids[-1]) == len(ids) - 1
    node_ids = None if dense else ids.astype(str).tolist()
    return inverse[:m].astype(np.int64), inverse[m:].astype(np.int64), node_ids


def int_rows(
    src: list[str], dst: list[str]
) -> tuple[np.ndarray, np.ndarray, list[str] | None] | None:
    """Rows of integer ids in numeric order (``None``: not all plain non-negative integers)."""
    both = np.asarray(src + dst)
    if both.dtype.kind != "U" or both.dtype.itemsize // 4 > _MAX_DIGITS:
        return None
    try:
        ascii_ids = both.astype("S")  # non-ASCII digits are names, as in the line reader
    except UnicodeEncodeError:
        return None
    if not bool(np.char.isdigit(ascii_ids).all()):  # refuses signs, dots, exponents
        return None
    values = ascii_ids.astype(np.int64)
    m = len(src)
    return _rows_of_values(values[:m], values[m:])
