"""libFM / SVMlight-style CTR files: ``label idx:value idx:value ...``, one field per position.

This is the format of the standard Frappe and MovieLens-tag CTR splits (He &
Chua, "Neural Factorization Machines", SIGIR 2017): every line holds the same
number of features, feature ``j`` of a line belongs to field ``j``, and the
indices are global (unique across fields).
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from embedlab._validation import check_int
from embedlab.data._dataset import CTRDataset
from embedlab.data._encode import LogReader, PathLike, RawChunk, at, check_file, parse_labels
from embedlab.data._textio import iter_text_lines
from embedlab.fields import Field

__all__ = ["libfm_log", "load_libfm"]


_INDEX = re.compile(r"[0-9]{1,18}")  # at most 18 digits: always fits int64


def _parse_chunk(
    lines: list[str], first_lineno: int, path: Path, n_feat: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int | None]:
    """Parse a chunk of lines into ``(labels (m,), indices (m, n_feat), linenos (m,), n_feat)``."""
    rows: list[list[str]] = []
    linenos: list[int] = []
    for i, line in enumerate(lines):
        parts = line.split()
        if not parts:
            continue
        lineno = first_lineno + i
        if n_feat is None:
            n_feat = len(parts) - 1
            if n_feat < 1:
                raise ValueError(f"{at(path, lineno)}: expected at least one feature, got 0")
        if len(parts) != n_feat + 1:
            raise ValueError(
                f"{at(path, lineno)}: expected {n_feat} features, got {len(parts) - 1}"
            )
        rows.append(parts)
        linenos.append(lineno)
    if not rows:
        empty = np.zeros(0, np.int64)
        return np.zeros(0, np.float32), np.zeros((0, n_feat or 0), np.int64), empty, n_feat
    assert n_feat is not None
    # object, not fixed-width strings: one long token must not widen every cell of the chunk
    tokens = np.empty((len(rows), n_feat + 1), dtype=object)  # (m, 1 + n_feat)
    tokens[:] = rows
    del rows
    line_arr = np.asarray(linenos, dtype=np.int64)
    labels = parse_labels(tokens[:, 0], path=path, linenos=line_arr)
    # each distinct "idx:value" token is parsed once; a chunk holds a few thousand of them
    codes, uniq = pd.factorize(tokens[:, 1:].reshape(-1))
    index = np.empty(len(uniq), dtype=np.int64)
    for k, tok in enumerate(uniq.tolist()):
        idx, sep, value = tok.partition(":")
        ok = bool(sep) and _INDEX.fullmatch(idx) is not None
        if ok:
            try:
                float(value)
            except ValueError:
                ok = False
        if not ok:
            pos = int(np.flatnonzero(codes == k)[0])
            row, col = divmod(pos, n_feat)
            raise ValueError(
                f"{at(path, linenos[row])}: feature {col + 1} must look like "
                f"index:value with 0 <= index < 10**18, got {tok!r}"
            )
        index[k] = int(idx)
    return labels, index[codes.reshape(len(line_arr), n_feat)], line_arr, n_feat


def _iter_file(
    path: Path, n_feat: int | None, chunk_lines: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Yield ``(labels (m,), indices (m, n_feat), linenos (m,), n_feat)`` per chunk of lines."""
    empty = True
    for first, lines in iter_text_lines(path, chunk_lines):
        lab, idx, linenos, n_feat = _parse_chunk(lines, first, path, n_feat)
        if len(lab):
            assert n_feat is not None
            empty = False
            yield lab, idx, linenos, n_feat
    if empty:
        raise ValueError(f"libfm file must hold at least one data line, got an empty file: {path}")


def _read_file(
    path: Path, n_feat: int | None, chunk_lines: int
) -> tuple[np.ndarray, np.ndarray, int]:
    parts = list(_iter_file(path, n_feat, chunk_lines))
    labels, index = (np.concatenate([p[k] for p in parts]) for k in (0, 1))
    return labels, index, parts[0][3]


def libfm_log(
    paths: Sequence[Path], *, field_names: Sequence[str] | None, chunk_lines: int
) -> LogReader:
    """The rows of checked libFM files (one stream, in order): feature ``j`` is field ``j``.

    The first chunk is read here to learn the number of fields; ids are
    assigned in ``"index"`` order (the in-memory loader's sorted global indices).
    """

    def rows() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
        n_feat: int | None = None
        for path in paths:
            for part in _iter_file(path, n_feat, chunk_lines):
                n_feat = part[3]
                yield part

    stream = rows()
    first = next(stream)
    n_feat = first[3]
    if field_names is None:
        field_names = [f"f{j}" for j in range(n_feat)]
    elif len(field_names) != n_feat:
        raise ValueError(
            f"{paths[0]}: lines must have one feature per field "
            f"({len(field_names)}: {', '.join(field_names)}), got {n_feat}"
        )

    def chunks() -> Iterator[RawChunk]:
        for labels, index, linenos, _ in itertools.chain([first], stream):
            yield RawChunk(labels, [index[:, j] for j in range(n_feat)], linenos)

    return LogReader("libfm", paths[0], tuple(field_names), chunks(), order="index")


def load_libfm(
    paths: Sequence[PathLike] | PathLike,
    *,
    name: str = "libfm",
    field_names: Sequence[str] | None = None,
    chunk_lines: int = 16_384,
) -> list[CTRDataset]:
    """Read libFM files into datasets that share one vocabulary.

    Field ``j`` is position ``j`` of the features on a line. The distinct
    global indices of field ``j`` over *all* files, sorted, become the local
    ids ``0..n_j-1``, so a train and a test file read together use the same
    ids. Values after ``:`` are checked to be numbers and otherwise ignored
    (every field is one-hot). Labels ``+1``/``1`` are clicks, ``-1``/``0`` not.

    Args:
        paths: one or more libFM files, read line by line in chunks.
        name: ``name`` of the returned datasets.
        field_names: one name per position; default ``f0, f1, ...``.
        chunk_lines: lines parsed at once.

    Returns:
        One :class:`CTRDataset` per file, in order; ``ids`` ``(n_i, n_fields)`` int64.

    Raises:
        ValueError: a line with a different number of features than the first
            line of the first file, a bad token or label (the message names the
            file and line: ``"frappe.test.libfm line 17: expected 10 features,
            got 9"``), or an empty file.

    Example:
        >>> train, test = load_libfm(["frappe.validation.libfm", "frappe.test.libfm"])
        ... # doctest: +SKIP
        >>> train.ids.shape, train.n_fields  # doctest: +SKIP
        ((57722, 10), 10)
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = [check_file(p, "libfm path") for p in paths]
    if not files:
        raise ValueError("paths must name at least one libfm file, got none")
    chunk_lines = check_int("chunk_lines", chunk_lines, min_value=1)
    n_feat: int | None = None
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for path in files:
        labels, index, n_feat = _read_file(path, n_feat, chunk_lines)
        parts.append((labels, index))
    assert n_feat is not None
    if field_names is None:
        field_names = [f"f{j}" for j in range(n_feat)]
    elif len(field_names) != n_feat:
        raise ValueError(
            f"field_names must have one name per feature position ({n_feat}), "
            f"got {len(field_names)}"
        )
    # shared vocabulary: the sorted distinct global indices of each position, over all files
    vocab = [np.unique(np.concatenate([idx[:, j] for _, idx in parts])) for j in range(n_feat)]
    fields = tuple(Field(str(fname), len(v)) for fname, v in zip(field_names, vocab, strict=True))
    out = []
    for labels, index in parts:
        ids = np.empty_like(index)
        for j in range(n_feat):
            ids[:, j] = np.searchsorted(vocab[j], index[:, j])
        out.append(CTRDataset(ids=ids, labels=labels, fields=fields, name=name))
    return out
