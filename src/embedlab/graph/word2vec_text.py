"""Reader for the word2vec text format (``.emb``), as node2vec tools such as pecanpy write it.

The format (word2vec's ``-binary 0`` output, gensim's ``save_word2vec_format``): a header
line ``n_vectors dim``, then one line per vector, ``id v_1 ... v_dim``, separated by
whitespace. Every departure raises ``ValueError`` naming the file and line: a header that
is not two positive integers, a ``dim`` other than the one asked for, a line with the
wrong number of values, a value that is not a finite number, a repeated id, fewer lines
than the header promises (a truncated file) or more, and bytes that are not UTF-8.

Example:
    >>> from embedlab.graph.word2vec_text import embedding_by_row, read_word2vec_text
    >>> ids, vecs = read_word2vec_text("out.emb", dim=128)  # doctest: +SKIP
    >>> emb, missing = embedding_by_row(ids, vecs, n_nodes=10312)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["embedding_by_row", "read_word2vec_text"]


def _header(line: str, where: str) -> tuple[int, int]:
    parts = line.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or min(map(int, parts)) < 1:
        raise ValueError(
            f"{where}: the header must be two positive integers 'n_vectors dim', got {line!r}"
        )
    return int(parts[0]), int(parts[1])


def _values(tokens: list[str], where: str) -> list[float]:
    out = []
    for tok in tokens:
        try:
            x = float(tok)
        except ValueError:
            raise ValueError(f"{where}: value {tok!r} is not a number") from None
        if not math.isfinite(x):
            raise ValueError(f"{where}: value {tok!r} is not finite")
        out.append(x)
    return out


def read_word2vec_text(path: str | Path, *, dim: int | None = None) -> tuple[list[str], np.ndarray]:
    """Read a word2vec text file.

    Args:
        path: the ``.emb`` / ``.txt`` file.
        dim: the vector width the caller expects; ``None`` accepts the header's.

    Returns:
        ``(ids, vectors)``: the ids in file order and a ``(n_vectors, dim)`` float32 array,
        row ``i`` belonging to ``ids[i]``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}); expected word2vec text") from e
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ValueError(f"{path}: empty file; expected a header line 'n_vectors dim'")
    n, width = _header(lines[0], f"{path} line 1")
    if dim is not None and width != dim:
        raise ValueError(f"{path} line 1: dim must be {dim} (the width asked for), got {width}")
    body = [(i + 1, line) for i, line in enumerate(lines[1:], start=1) if line.strip()]
    if len(body) != n:
        what = "truncated" if len(body) < n else "too long"
        raise ValueError(
            f"{path}: {what}: the header says {n} vectors, the file has {len(body)} lines of them"
        )
    ids: list[str] = []
    seen: set[str] = set()
    vectors = np.empty((n, width), dtype=np.float32)
    for row, (lineno, line) in enumerate(body):
        where = f"{path} line {lineno}"
        tokens = line.split()
        if len(tokens) != width + 1:
            raise ValueError(
                f"{where}: expected an id and {width} values, got {len(tokens) - 1} values"
            )
        if tokens[0] in seen:
            raise ValueError(f"{where}: id {tokens[0]!r} is repeated; ids must be unique")
        seen.add(tokens[0])
        ids.append(tokens[0])
        vectors[row] = _values(tokens[1:], where)
    return ids, vectors


def embedding_by_row(
    ids: list[str], vectors: np.ndarray, *, n_nodes: int
) -> tuple[np.ndarray, int]:
    """Place vectors whose ids are node rows ``0..n_nodes-1`` into an ``(n_nodes, dim)`` matrix.

    Nodes without a vector (a node2vec tool skips isolated nodes) get a zero row.

    Returns:
        ``(embedding, n_missing)``.
    """
    if len(ids) != vectors.shape[0]:
        raise ValueError(
            f"ids must have one entry per vector row ({vectors.shape[0]}), got {len(ids)}"
        )
    out = np.zeros((n_nodes, vectors.shape[1]), dtype=vectors.dtype)
    filled = np.zeros(n_nodes, dtype=bool)
    for row, node in enumerate(ids):
        if not node.isdigit() or int(node) >= n_nodes:
            raise ValueError(f"ids must be node rows in [0, {n_nodes}), got {node!r}")
        out[int(node)] = vectors[row]
        filled[int(node)] = True
    return out, int(n_nodes - filled.sum())
