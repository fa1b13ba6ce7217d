"""``prepare_ctr``: a click log read once, in chunks -> Parquet shards + vocabularies.

Pass 1 streams the log (``chunk_rows`` rows at a time, through the same parsers as
the in-memory loaders), turns every value into a 64-bit key, counts the keys per
field with numpy (:class:`~embedlab.data._keys.KeyCounter`) and writes the keys of
each row to temporary Parquet shards of its split. The vocabularies are then final
(min-count, out-of-vocabulary id). Pass 2 rewrites each temporary shard into dense
ids. The raw log is read once; memory holds one chunk, the vocabularies (about 24
bytes per distinct value while counting) and one row group; it does not grow with
the number of rows.

The split rule (deterministic, any chunking gives the same): data row ``r``
(0-based, in file order, over all files of the source) goes to ``train`` if
``u(r) < f0``, ``valid`` if ``u(r) < f0 + f1``, else ``test``, with
``u(r) = (splitmix64(r + splitmix64(seed)) >> 11) / 2**53`` and
``fractions = (f0, f1, f2)`` (default 0.8, 0.1, 0.1; ``seed`` default 0).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from embedlab._io import file_xxh3
from embedlab._validation import check_int
from embedlab.data._encode import LogReader, PathLike
from embedlab.data._keys import SPLITS, FieldVocab, KeyCounter, split_of_rows, value_keys
from embedlab.data._logsources import open_log
from embedlab.data._shardio import (
    LABEL,
    new_folder,
    publish_folder,
    shard_name,
    vocab_name,
    write_manifest,
)

if TYPE_CHECKING:
    from embedlab.data.ctr_shards import CTRShards

__all__ = ["DEFAULT_FRACTIONS", "ProgressFn", "prepare_ctr"]

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)
#: progress callback ``(stage, done, total)``: ``("read", rows_so_far, None)`` after each
#: chunk, ``("write", shards_done, n_shards)`` after each shard
ProgressFn = Callable[[str, int, "int | None"], None]
_COMPRESSION = "zstd"
KEYS_NOTE = (
    "integers are their own key (int64 bits); text is pandas.util.hash_array "
    "(SipHash-2-4, default hash_key, UTF-8)"
)


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(not 0.0 <= f <= 1.0 for f in values) or values[0] <= 0.0:
        raise ValueError(
            f"fractions must be three numbers in [0, 1] (train > 0), got {tuple(fractions)}"
        )
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {sum(values):g}")
    return values  # type: ignore[return-value]


class _SplitWriter:
    """Temporary key shards of one split: a new file every ``shard_rows`` rows."""

    def __init__(self, folder: Path, split: str, schema: pa.Schema, shard_rows: int) -> None:
        self.folder, self.split, self.schema, self.shard_rows = folder, split, schema, shard_rows
        self.files: list[tuple[Path, int]] = []
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        start = 0
        while start < table.num_rows:
            if self._writer is None or self.files[-1][1] >= self.shard_rows:
                self.close()
                path = self.folder / f"{self.split}-{len(self.files):05d}.parquet"
                self._writer = pq.ParquetWriter(path, self.schema, compression="snappy")
                self.files.append((path, 0))
            take = min(table.num_rows - start, self.shard_rows - self.files[-1][1])
            self._writer.write_table(table.slice(start, take))
            self.files[-1] = (self.files[-1][0], self.files[-1][1] + take)
            start += take

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _pass1(
    reader: LogReader,
    work: Path,
    *,
    shard_rows: int,
    seed: int,
    fractions: Sequence[float],
    progress: ProgressFn,
) -> tuple[list[KeyCounter | None], dict[str, _SplitWriter]]:
    n_fixed = len(reader.fixed)
    n_fields = len(reader.names)
    keys_schema = pa.schema(
        [pa.field(f"k{j}", pa.uint64()) for j in range(n_fields)]
        + [pa.field(LABEL, pa.float32())]
        + [pa.field(f"d{j}", pa.float32()) for j in range(len(reader.dense_names))]
    )
    counters: list[KeyCounter | None] = [None] * n_fixed + [
        KeyCounter() for _ in range(n_fields - n_fixed)
    ]
    writers = {s: _SplitWriter(work, s, keys_schema, shard_rows) for s in SPLITS}
    done = 0
    try:
        for raw in reader.chunks:
            m = len(raw.labels)
            keys = np.empty((m, n_fields), dtype=np.uint64)  # (m, n_fields)
            for j, values in enumerate(raw.columns):
                counter = counters[j]
                if counter is None:  # a fixed field: its values are its ids
                    keys[:, j] = np.asarray(values, dtype=np.int64).view(np.uint64)
                    continue
                uniq, codes = value_keys(values)
                counter.add(uniq, codes, first_row=done)
                keys[:, j] = uniq[codes]
            split = split_of_rows(np.arange(done, done + m), seed=seed, fractions=fractions)
            arrays = [keys[:, j] for j in range(n_fields)] + [raw.labels]
            if raw.dense is not None:
                arrays += [raw.dense[:, j] for j in range(raw.dense.shape[1])]
            for s, name in enumerate(SPLITS):
                mask = split == s
                if mask.any():
                    cols = [pa.array(a[mask]) for a in arrays]
                    writers[name].write(pa.Table.from_arrays(cols, schema=keys_schema))
            done += m
            progress("read", done, None)
    finally:
        for w in writers.values():
            w.close()
    if done == 0:
        raise ValueError(
            f"{reader.kind} file must hold at least one data row, got none: {reader.path}"
        )
    return counters, writers


def _fsynced_info(folder: Path, name: str, rows: int) -> dict[str, Any]:
    path = folder / name
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
    return {"file": name, "rows": rows, "bytes": path.stat().st_size, "xxh3_128": file_xxh3(path)}


def _write_vocab(folder: Path, j: int, vocab: FieldVocab, order: str) -> dict[str, Any]:
    name = vocab_name(j)
    (folder / "vocab").mkdir(exist_ok=True)
    table = pa.table({"key": pa.array(vocab.keys), "count": pa.array(vocab.counts)})
    pq.write_table(table, folder / name, compression=_COMPRESSION)
    info = _fsynced_info(folder, name, len(vocab.keys))
    info.update(offset=vocab.offset, order=order, oov_values=vocab.oov_values)
    info["oov_rows"] = vocab.oov_rows
    return info


def _rewrite(
    src: Path,
    dst: Path,
    vocabs: Sequence[FieldVocab | None],
    schema: pa.Schema,
    row_group_rows: int,
) -> None:
    """One temporary key shard -> a shard of ids, in row groups of ``row_group_rows``."""
    n_fields = len(vocabs)
    pending: list[pa.Table] = []
    n = 0
    with pq.ParquetWriter(dst, schema, compression=_COMPRESSION) as writer:
        for batch in pq.ParquetFile(src).iter_batches(batch_size=row_group_rows):
            cols: list[pa.Array] = []
            for j, vocab in enumerate(vocabs):
                keys = batch.column(j).to_numpy(zero_copy_only=False)
                ids = keys.view(np.int64) if vocab is None else vocab.lookup(keys)
                cols.append(pa.array(ids.astype(schema.field(j).type.to_pandas_dtype())))
            cols += [batch.column(k) for k in range(n_fields, batch.num_columns)]
            pending.append(pa.Table.from_arrays(cols, schema=schema))
            n += batch.num_rows
            while n >= row_group_rows:
                table = pa.concat_tables(pending)
                writer.write_table(table.slice(0, row_group_rows), row_group_size=row_group_rows)
                rest = table.slice(row_group_rows)
                pending, n = [rest], rest.num_rows
        if n:
            writer.write_table(pa.concat_tables(pending), row_group_size=row_group_rows)


def _vocabularies(
    reader: LogReader, counters: list[KeyCounter | None], folder: Path, min_count: int
) -> tuple[list[dict[str, Any]], list[FieldVocab | None]]:
    """Finalise and write each field's vocabulary: its manifest entries and lookups."""
    fields: list[dict[str, Any]] = []
    vocabs: list[FieldVocab | None] = []
    for j, name in enumerate(reader.names):
        counter = counters[j]
        if counter is None:
            vocabs.append(None)
            fields.append({"name": name, "cardinality": reader.fixed[name], "vocab": None})
            continue
        vocab = counter.finalize(min_count=min_count, order=reader.order)
        counters[j] = None  # its memory goes
        vocabs.append(vocab)
        info = _write_vocab(folder, j, vocab, reader.order)
        fields.append({"name": name, "cardinality": vocab.cardinality, "vocab": info})
    return fields, vocabs


def _pass2(
    writers: dict[str, _SplitWriter],
    folder: Path,
    fields: list[dict[str, Any]],
    vocabs: list[FieldVocab | None],
    reader: LogReader,
    row_group_rows: int,
    report: ProgressFn,
) -> dict[str, list[dict[str, Any]]]:
    """Rewrite every temporary key shard into ids; the manifest entries of the shards."""
    schema = pa.schema(
        [
            pa.field(f["name"], pa.int32() if f["cardinality"] < 2**31 else pa.int64())
            for f in fields
        ]
        + [pa.field(LABEL, pa.float32())]
        + [pa.field(d, pa.float32()) for d in reader.dense_names]
    )
    total = sum(len(w.files) for w in writers.values())
    shards: dict[str, list[dict[str, Any]]] = {}
    for split, writer in writers.items():
        shards[split] = []
        (folder / split).mkdir()
        for i, (path, rows) in enumerate(writer.files):
            name = shard_name(split, i)
            _rewrite(path, folder / name, vocabs, schema, row_group_rows)
            path.unlink()
            shards[split].append(_fsynced_info(folder, name, rows))
            report("write", sum(len(v) for v in shards.values()), total)
    return shards


def prepare_ctr(
    source: str,
    out: PathLike,
    *,
    min_count: int | None = None,
    shard_rows: int = 1 << 20,
    row_group_rows: int = 1 << 16,
    chunk_rows: int = 100_000,
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    force: bool = False,
    progress: ProgressFn | None = None,
) -> CTRShards:
    """Turn a click log into a folder of Parquet shards and vocabularies, reading it once.

    Args:
        source: ``criteo:FILE``, ``avazu:FILE``, ``libfm:FILE|DIR``, ``frappe:DIR|FILE``
            or ``csv(label=click, dense=a|b, drop=id):FILE``; files may be gzip-compressed.
        out: the output folder: absent, empty, or (with ``force``) one written by prepare.
        min_count: values seen fewer times share the out-of-vocabulary id 0; default
            10 for Criteo and Avazu, 1 for libFM, Frappe and CSV (as their loaders).
        shard_rows: rows per shard (the last shard of a split may be shorter).
        row_group_rows: rows per Parquet row group (the unit a reader holds in memory).
        chunk_rows: rows read from the log at once.
        seed, fractions: the split rule (see the module docstring).
        force: replace an existing shards folder at ``out``.
        progress: called as ``progress("read", rows_so_far, None)`` after each chunk and
            ``progress("write", shards_done, n_shards)`` after each shard.

    Returns:
        The written folder, opened as :class:`~embedlab.data.CTRShards`.

    Raises:
        ValueError: bad arguments, a bad or empty log (the message names the file and
            line), or an output folder that is not ours; nothing is left at ``out`` then.

    Example:
        >>> shards = prepare_ctr("criteo:day_0.gz", "criteo-shards/", min_count=10)
        ... # doctest: +SKIP
        >>> shards.n_rows("train")  # doctest: +SKIP
        156000000
    """
    shard_rows = check_int("shard_rows", shard_rows, min_value=1)
    row_group_rows = check_int("row_group_rows", row_group_rows, min_value=1)
    chunk_rows = check_int("chunk_rows", chunk_rows, min_value=1)
    seed = check_int("seed", seed, min_value=0)
    fractions = _check_fractions(fractions)
    if min_count is not None:
        min_count = check_int("min_count", min_count, min_value=1)
    out = Path(out).expanduser()
    kind, reader, log_source = open_log(source, chunk_rows=chunk_rows)
    min_count = log_source.min_count if min_count is None else min_count
    names = [*reader.names, LABEL, *reader.dense_names]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(
            f"shard column names must be unique, but {', '.join(map(repr, clash))} is both a "
            f"field and the label or a dense column; drop or rename it in {reader.path}"
        )
    report = progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    tmp = new_folder(out, force=force)
    try:
        work = tmp / "_pass1"
        work.mkdir()
        counters, writers = _pass1(
            reader, work, shard_rows=shard_rows, seed=seed, fractions=fractions, progress=report
        )
        fields, vocabs = _vocabularies(reader, counters, tmp, min_count)
        shards = _pass2(writers, tmp, fields, vocabs, reader, row_group_rows, report)
        shutil.rmtree(work)
        from embedlab import __version__

        write_manifest(
            tmp,
            {
                "name": kind,
                "source": source,
                "min_count": min_count,
                "split": {
                    "rule": "row r -> train if u(r) < f0, valid if u(r) < f0 + f1, else test; "
                    "u(r) = (splitmix64(r + splitmix64(seed)) >> 11) / 2**53; "
                    "r = 0-based data row in file order over all files",
                    "seed": seed,
                    "fractions": list(fractions),
                },
                "keys": KEYS_NOTE,
                "fields": fields,
                "dense": list(reader.dense_names),
                "n_rows": {s: sum(e["rows"] for e in shards[s]) for s in SPLITS},
                "shards": shards,
                "shard_rows": shard_rows,
                "row_group_rows": row_group_rows,
                "seconds": round(time.perf_counter() - started, 3),
                "created_by": f"embedlab {__version__}",
            },
        )
        publish_folder(tmp, out, force=force)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    from embedlab.data.ctr_shards import CTRShards  # torch: loaded only to open the result

    return CTRShards(out)
