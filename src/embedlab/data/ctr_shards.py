"""Read a CTR shards folder (written by ``embedlab data prepare``) lazily, in batches.

Memory is bounded by the shuffle buffer plus one Parquet row group: shards are
read a row group at a time (``ParquetFile.iter_batches``), never whole. Files are
checked lazily: opening checks the manifest and the vocabularies; each shard is
checked (size, footer, columns, id range, XXH3-128 checksum) the first time it is
read, so a corrupt shard of one split does not stop reading another;
``verify=True`` (or :meth:`CTRShards.check`) checks every file up front.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from embedlab._validation import check_int
from embedlab.data._dataset import CTRDataset
from embedlab.data._keys import SPLITS
from embedlab.data._shardio import FileInfo, read_manifest
from embedlab.data._shardread import (
    Piece,
    check_shard,
    check_vocab,
    concat,
    num_row_groups,
    read_shard,
    rebatch,
    shuffled,
    verify_checksum,
)
from embedlab.fields import Field

__all__ = ["CTRBatch", "CTRShards", "CTRShardsDataset"]


@dataclass(frozen=True)
class CTRBatch:
    """One batch of CTR rows as tensors.

    Args:
        ids: ``(b, n_fields)`` int64.
        labels: ``(b,)`` float32 in {0, 1}.
        dense: ``(b, n_dense)`` float32, or None when the data has no dense features.
    """

    ids: torch.Tensor
    labels: torch.Tensor
    dense: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> CTRBatch:
        """The batch on ``device``."""
        ids = self.ids.to(device, non_blocking=non_blocking)
        labels = self.labels.to(device, non_blocking=non_blocking)
        dense = None if self.dense is None else self.dense.to(device, non_blocking=non_blocking)
        return CTRBatch(ids, labels, dense)

    def pin_memory(self) -> CTRBatch:
        """The batch in pinned memory (``DataLoader(pin_memory=True)`` calls this)."""
        dense = None if self.dense is None else self.dense.pin_memory()
        return CTRBatch(self.ids.pin_memory(), self.labels.pin_memory(), dense)


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return split


def _batch(piece: Piece) -> CTRBatch:
    ids, labels, dense = (
        None if a is None else torch.from_numpy(np.ascontiguousarray(a)) for a in piece
    )
    assert ids is not None and labels is not None
    return CTRBatch(ids, labels, dense)


class CTRShards:
    """A prepared CTR folder: fields, split sizes, and lazy batches of each split.

    Args:
        path: a folder written by :func:`~embedlab.data.prepare_ctr` (``embedlab data prepare``).
        verify: check every shard and vocabulary file (sizes, footers, checksums) now;
            otherwise each shard is checked the first time it is read.

    Distributed reading: shard ``i`` of a split goes to rank ``i % world_size``, and a
    ``DataLoader`` worker ``w`` of ``num_workers`` reads every ``num_workers``-th of its
    rank's shards. Ranks (and workers) can hold different numbers of rows, so their step
    counts can differ; :meth:`steps_per_epoch` gives the minimum over ranks, the step at
    which every rank should stop.

    Example:
        >>> shards = CTRShards("criteo-shards/")  # doctest: +SKIP
        >>> for batch in shards.iter_batches("train", 4096, shuffle_buffer=1 << 20, epoch=0):
        ...     logits = model(batch.ids)  # (4096, n_fields) int64  # doctest: +SKIP
        >>> valid = shards.to_memory("valid")  # a CTRDataset  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str], *, verify: bool = False) -> None:
        self.path = Path(path).expanduser()
        self._m = read_manifest(self.path)
        for info, field in zip(self._m.vocabs, self._m.fields, strict=True):
            if info is not None:
                check_vocab(self.path, info, field.name)
        self._checked: set[str] = set()  # shard files that passed every check
        if verify:
            self.check()

    def __repr__(self) -> str:
        rows = ", ".join(f"{s}={self.n_rows(s)}" for s in SPLITS)
        return f"CTRShards({str(self.path)!r}, n_fields={len(self.fields)}, {rows})"

    @property
    def fields(self) -> tuple[Field, ...]:
        """One :class:`Field` per categorical column, from the manifest."""
        return self._m.fields

    @property
    def n_dense(self) -> int:
        """Number of dense (numeric) feature columns; 0 when there are none."""
        return len(self._m.dense)

    @property
    def name(self) -> str:
        """The source's name (``"criteo"``, ``"frappe"``, ...): the name of :meth:`to_memory`."""
        return self._m.name

    @property
    def manifest(self) -> dict[str, Any]:
        """The parsed ``manifest.json`` (a copy)."""
        return dict(self._m.doc)

    def n_rows(self, split: str) -> int:
        """Rows of ``split`` (``"train"``, ``"valid"`` or ``"test"``), from the manifest."""
        return self._m.n_rows(_check_split(split))

    def shard_files(self, split: str) -> list[Path]:
        """Paths of the shard files of ``split``, in manifest order."""
        return [self.path / s.file for s in self._m.shards[_check_split(split)]]

    def check(self, split: str | None = None) -> None:
        """Check every shard of ``split`` (all splits if None) and every vocabulary now."""
        for vocab, field in zip(self._m.vocabs, self._m.fields, strict=True):
            if vocab is not None:
                verify_checksum(
                    self.path / vocab.file, vocab, f"vocabulary of field {field.name!r}"
                )
        for s in SPLITS if split is None else (_check_split(split),):
            for info in self._m.shards[s]:
                self._shard(info)

    def _shard(self, info: FileInfo) -> Path:
        path = self.path / info.file
        if info.file not in self._checked:
            check_shard(self.path, info, self._m)
            verify_checksum(path, info, "shard")
            self._checked.add(info.file)
        return path

    def _assigned(
        self, split: str, rank: int, world_size: int, worker: int, workers: int
    ) -> list[int]:
        n = len(self._m.shards[split])
        return list(range(rank, n, world_size))[worker::workers]

    def steps_per_epoch(
        self,
        split: str,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        *,
        num_workers: int = 0,
        drop_last: bool = False,
    ) -> int:
        """Batches per epoch of the rank that has the fewest (the same for every ``rank``).

        Each ``DataLoader`` worker batches its own shards, so with ``num_workers > 0``
        a worker's last batch may be short; pass the loader's ``num_workers``.
        """
        self._check_dist(_check_split(split), rank, world_size)
        batch_size = check_int("batch_size", batch_size, min_value=1)
        workers = max(1, check_int("num_workers", num_workers, min_value=0))
        rows = [s.rows for s in self._m.shards[split]]

        def steps(r: int) -> int:
            total = 0
            for w in range(workers):
                n = sum(rows[i] for i in self._assigned(split, r, world_size, w, workers))
                total += n // batch_size if drop_last else -(-n // batch_size)
            return total

        return min(steps(r) for r in range(world_size))

    def _check_dist(self, split: str, rank: int, world_size: int) -> None:
        world_size = check_int("world_size", world_size, min_value=1)
        check_int("rank", rank, min_value=0)
        if rank >= world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        n = len(self._m.shards[split])
        if world_size > n > 0:  # (a split without rows yields no batches)
            raise ValueError(
                f"world_size must be <= the number of shards of split {split!r} ({n}) so that "
                f"every rank reads one, got {world_size}; prepare with a smaller --shard-rows"
            )

    def _reading(self, split: str, batch_size: int, **options: Any) -> _Reading:
        """The checked arguments of :meth:`iter_batches` / :meth:`dataset`."""
        reading = _Reading(_check_split(split), batch_size, **options)
        self._check_dist(reading.split, reading.rank, reading.world_size)
        check_int("batch_size", reading.batch_size, min_value=1)
        for name in ("shuffle_buffer", "seed", "epoch"):
            check_int(name, getattr(reading, name), min_value=0)
        return reading

    def iter_batches(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle_buffer: int = 0,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> Iterator[CTRBatch]:
        """Batches of ``split`` for this ``rank``, read lazily.

        ``shuffle_buffer=0`` reads the rank's shards in order, rows as stored. With
        ``shuffle_buffer > 0`` the shard order and the row-group order in each shard
        are permuted by ``(seed, epoch, rank)`` and rows pass a buffer of that many rows.
        Batches span shard boundaries; only the last may be short (dropped with
        ``drop_last``).

        Yields:
            :class:`CTRBatch`: ids ``(b, n_fields)``, labels ``(b,)``, dense ``(b, n_dense)``.
        """
        reading = self._reading(
            split,
            batch_size,
            shuffle_buffer=shuffle_buffer,
            seed=seed,
            epoch=epoch,
            rank=rank,
            world_size=world_size,
            drop_last=drop_last,
        )
        return self._iter(reading, worker=0, workers=1)

    def _iter(self, r: _Reading, *, worker: int, workers: int) -> Iterator[CTRBatch]:
        rng = np.random.default_rng([r.seed, r.epoch, r.rank, worker])
        mine = self._assigned(r.split, r.rank, r.world_size, worker, workers)
        if r.shuffle_buffer:
            mine = [mine[i] for i in rng.permutation(len(mine))]
        pieces = self._pieces(r.split, mine, rng if r.shuffle_buffer else None)
        if r.shuffle_buffer:
            pieces = shuffled(pieces, r.shuffle_buffer, rng)
        return map(_batch, rebatch(pieces, r.batch_size, r.drop_last))

    def _pieces(
        self, split: str, shards: list[int], rng: np.random.Generator | None
    ) -> Iterator[Piece]:
        for i in shards:
            info = self._m.shards[split][i]
            path = self._shard(info)
            groups = None if rng is None else rng.permutation(num_row_groups(path)).tolist()
            yield from read_shard(path, self._m, batch_rows=1 << 16, row_groups=groups)

    def dataset(
        self,
        split: str,
        batch_size: int,
        *,
        shuffle_buffer: int = 0,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> CTRShardsDataset:
        """An ``IterableDataset`` of :class:`CTRBatch` for ``DataLoader(ds, batch_size=None)``.

        The arguments are those of :meth:`iter_batches`. ``DataLoader`` workers split
        the rank's shards between them (worker ``w`` of ``W`` reads every ``W``-th);
        call ``set_epoch`` before each epoch (as with ``DistributedSampler``) to change
        the shuffle.
        """
        reading = self._reading(
            split,
            batch_size,
            shuffle_buffer=shuffle_buffer,
            seed=seed,
            epoch=epoch,
            rank=rank,
            world_size=world_size,
            drop_last=drop_last,
        )
        return CTRShardsDataset(self, reading)

    def to_memory(self, split: str) -> CTRDataset:
        """All rows of ``split`` as an in-memory :class:`CTRDataset` (for small splits)."""
        split = _check_split(split)
        if self.n_rows(split) == 0:
            raise ValueError(f"split {split!r} of {self.path} has no rows; nothing to load")
        everything = list(range(len(self._m.shards[split])))
        ids, labels, dense = concat(list(self._pieces(split, everything, None)))
        return CTRDataset(ids=ids, labels=labels, fields=self.fields, dense=dense, name=self.name)


@dataclass(frozen=True)
class _Reading:
    """What to read: the arguments of :meth:`CTRShards.iter_batches`."""

    split: str
    batch_size: int
    shuffle_buffer: int = 0
    seed: int = 0
    epoch: int = 0
    rank: int = 0
    world_size: int = 1
    drop_last: bool = False


class CTRShardsDataset(IterableDataset[CTRBatch]):
    """Batches of one split of :class:`CTRShards` for a ``DataLoader`` (``batch_size=None``).

    Made by :meth:`CTRShards.dataset`.

    Example:
        >>> ds = CTRShards("criteo-shards/").dataset("train", 4096, shuffle_buffer=1 << 18)
        ... # doctest: +SKIP
        >>> loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
        ... # doctest: +SKIP
    """

    def __init__(self, shards: CTRShards, reading: _Reading) -> None:
        self.shards, self.reading = shards, reading

    def set_epoch(self, epoch: int) -> None:
        """Shuffle the next pass over the data as epoch ``epoch``."""
        self.reading = dataclasses.replace(
            self.reading, epoch=check_int("epoch", epoch, min_value=0)
        )

    def __iter__(self) -> Iterator[CTRBatch]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        return self.shards._iter(self.reading, worker=worker, workers=workers)
