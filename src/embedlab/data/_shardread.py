"""Checks and lazy reads of the files of a CTR shards folder (one row group at a time),
and the shuffle buffer and batching over what is read."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from embedlab._io import file_xxh3
from embedlab.data._shardio import FileInfo, Manifest

__all__ = [
    "Piece",
    "check_file",
    "check_shard",
    "check_vocab",
    "concat",
    "num_row_groups",
    "read_shard",
    "rebatch",
    "shuffled",
    "take",
    "verify_checksum",
]

# (ids (m, n_fields) int64, labels (m,) float32, dense (m, n_dense) float32 or None)
Piece = tuple[np.ndarray, np.ndarray, np.ndarray | None]


def check_file(root: Path, info: FileInfo, what: str) -> Path:
    """The file of ``info``: it must exist with the size the manifest records."""
    path = root / info.file
    if not path.is_file():
        raise ValueError(f"{what} {info.file} is missing from {root} (listed in its manifest)")
    size = path.stat().st_size
    if size != info.bytes:
        raise ValueError(
            f"{what} {path} is truncated or was altered: it has {size} bytes, "
            f"the manifest says {info.bytes}"
        )
    return path


def verify_checksum(path: Path, info: FileInfo, what: str) -> None:
    digest = file_xxh3(path)
    if digest != info.xxh3_128:
        raise ValueError(
            f"{what} {path} is corrupt: its XXH3-128 checksum {digest} does not match "
            f"the manifest's {info.xxh3_128}"
        )


def _metadata(path: Path, what: str) -> pq.FileMetaData:
    try:
        return pq.read_metadata(path)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{what} {path} is corrupt: not a readable Parquet file ({exc})") from None


def check_shard(root: Path, info: FileInfo, m: Manifest) -> None:
    """A shard's size, Parquet footer, rows, columns and id statistics against the manifest."""
    path = check_file(root, info, "shard")
    meta = _metadata(path, "shard")
    if meta.num_rows != info.rows:
        raise ValueError(
            f"shard {path} holds {meta.num_rows} rows but the manifest says {info.rows}"
        )
    names = list(meta.schema.names)
    if names != m.columns:
        raise ValueError(
            f"shard {path} has columns {names} but the manifest's fields, label and dense "
            f"columns are {m.columns}; the manifest does not match the shards"
        )
    for j, field in enumerate(m.fields):
        top = None
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(j).statistics
            if stats is None or not stats.has_min_max:
                continue
            if stats.min < 0:
                raise ValueError(
                    f"shard {path}: ids of field {field.name!r} must be >= 0, got {stats.min}"
                )
            top = stats.max if top is None else max(top, stats.max)
        if top is not None and top >= field.cardinality:
            raise ValueError(
                f"shard {path}: ids of field {field.name!r} must be < its cardinality "
                f"{field.cardinality} (manifest), got {top}; the vocabulary does not match "
                "the shards"
            )


def check_vocab(root: Path, info: FileInfo, field: str) -> None:
    """A vocabulary file's size and row count (its footer) against the manifest."""
    path = check_file(root, info, f"vocabulary of field {field!r}")
    rows = _metadata(path, f"vocabulary of field {field!r}").num_rows
    if rows != info.rows:
        raise ValueError(
            f"vocabulary {path} of field {field!r} holds {rows} values but the manifest "
            f"says {info.rows}; the vocabulary does not match the manifest"
        )


def read_shard(
    path: Path, m: Manifest, *, batch_rows: int, row_groups: Sequence[int] | None = None
) -> Iterator[Piece]:
    """The rows of one shard, a row group (or ``batch_rows`` rows) at a time.

    Every id is checked against its field's cardinality (a shard that does not match
    its manifest raises naming the shard, the field and the id).
    """
    n_fields = len(m.fields)
    cards = np.array([f.cardinality for f in m.fields], dtype=np.int64)
    try:
        pf = pq.ParquetFile(path)
        groups = list(range(pf.num_row_groups)) if row_groups is None else list(row_groups)
        batches = pf.iter_batches(batch_size=batch_rows, row_groups=groups, columns=m.columns)
        for batch in batches:
            rows = batch.num_rows
            ids = np.empty((rows, n_fields), dtype=np.int64)  # (m, n_fields)
            for j in range(n_fields):
                ids[:, j] = batch.column(j).to_numpy(zero_copy_only=False)
            bad = (ids < 0) | (ids >= cards)
            if bad.any():
                row, j = np.argwhere(bad)[0]
                raise ValueError(
                    f"shard {path}: ids of field {m.fields[j].name!r} must be in "
                    f"[0, {cards[j]}), got {ids[row, j]}; the vocabulary does not match the shards"
                )
            labels = batch.column(n_fields).to_numpy(zero_copy_only=False).astype(np.float32)
            dense = None
            if m.dense:
                dense = np.empty((rows, len(m.dense)), dtype=np.float32)  # (m, n_dense)
                for k in range(len(m.dense)):
                    dense[:, k] = batch.column(n_fields + 1 + k).to_numpy(zero_copy_only=False)
            yield ids, labels, dense
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"shard {path} is corrupt: cannot read it as Parquet ({exc})") from None


def num_row_groups(path: Path) -> int:
    return int(_metadata(path, "shard").num_row_groups)


# ------------------------------------------------------------------ shuffle and batches
def concat(pieces: list[Piece]) -> Piece:
    if len(pieces) == 1:
        return pieces[0]
    dense = None if pieces[0][2] is None else np.concatenate([p[2] for p in pieces])  # type: ignore[misc]
    return np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces]), dense


def take(piece: Piece, index: Any) -> Piece:
    return piece[0][index], piece[1][index], None if piece[2] is None else piece[2][index]


def shuffled(pieces: Iterator[Piece], size: int, rng: np.random.Generator) -> Iterator[Piece]:
    """Rows through a buffer of ``size`` rows: each row that comes in evicts a random one."""
    filling: list[Piece] = []
    n = 0
    buf: Piece | None = None
    for piece in pieces:
        if buf is None:
            filling.append(piece)
            n += len(piece[1])
            if n < size:
                continue
            whole = concat(filling)
            buf, piece = take(whole, slice(0, size)), take(whole, slice(size, None))
            filling = []
        start, rows = 0, len(piece[1])
        while start < rows:
            k = min(rows - start, size)
            slots = rng.choice(size, size=k, replace=False)
            yield take(buf, slots)  # fancy indexing: a copy
            incoming = take(piece, slice(start, start + k))
            for b, x in zip(buf, incoming, strict=True):
                if b is not None:
                    b[slots] = x
            start += k
    rest = concat(filling) if buf is None and filling else buf
    if rest is not None:
        yield take(rest, rng.permutation(len(rest[1])))


def rebatch(pieces: Iterator[Piece], batch_size: int, drop_last: bool) -> Iterator[Piece]:
    """Pieces cut and joined into batches of ``batch_size`` rows (the last may be short)."""
    pending: list[Piece] = []
    n = 0
    for piece in pieces:
        pending.append(piece)
        n += len(piece[1])
        if n < batch_size:
            continue
        whole = concat(pending)
        cut = n - n % batch_size
        for start in range(0, cut, batch_size):
            yield take(whole, slice(start, start + batch_size))
        pending = [take(whole, slice(cut, None))] if cut < n else []
        n -= cut
    if n and not drop_last:
        yield concat(pending)
