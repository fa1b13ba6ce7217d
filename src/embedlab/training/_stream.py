"""Streamed CTR data as the trainer sees it: a :class:`BatchSource` of per-rank batches.

The Parquet shard reader (``embedlab.data``, ``shards:DIR``) and :class:`MemorySource` (an
in-memory :class:`~embedlab.data.CTRSplits` served through the same protocol) both satisfy
:class:`BatchSource`, so :class:`~embedlab.training.DistributedCTRTrainer` never needs the
training rows in memory.

Example:
    >>> from embedlab.data import load_ctr
    >>> source = MemorySource(load_ctr("synthetic", n_samples=1000, seed=0))
    >>> source.n_rows("train"), source.steps_per_epoch("train", 300, 0, 2)
    (800, 2)
    >>> [b.ids.shape for b in source.iter_batches("train", 300, rank=1, world_size=2)]
    [torch.Size([300, 10]), torch.Size([100, 10])]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from embedlab._validation import check_choice, check_int, check_int_in_range
from embedlab.data import CTRDataset, CTRSplits
from embedlab.fields import Field

__all__ = ["BatchSource", "CTRBatchLike", "MemorySource", "TensorBatch"]

SPLITS = ("train", "valid", "test")


class CTRBatchLike(Protocol):
    """One batch of rows: what the trainer reads of a source's batch objects.

    Attributes:
        ids: ``(batch, n_fields)`` int64 local ids.
        labels: ``(batch,)`` float32 in {0, 1}.
        dense: ``(batch, n_dense)`` float32, or None when the data has no numeric features.
    """

    @property
    def ids(self) -> torch.Tensor:
        """``(batch, n_fields)`` int64 local ids."""

    @property
    def labels(self) -> torch.Tensor:
        """``(batch,)`` float32 in {0, 1}."""

    @property
    def dense(self) -> torch.Tensor | None:
        """``(batch, n_dense)`` float32, or None when the data has no numeric features."""


@dataclass(frozen=True)
class TensorBatch:
    """A :class:`CTRBatchLike` of plain tensors (what :class:`MemorySource` yields)."""

    ids: torch.Tensor
    labels: torch.Tensor
    dense: torch.Tensor | None = None


@runtime_checkable
class BatchSource(Protocol):
    """CTR data read one batch at a time, each rank its own part of every global batch.

    ``batch_size`` is the rows one rank gets per step (the global batch divided by the
    world size). ``steps_per_epoch`` is the minimum over ranks, so every rank takes the
    same number of optimizer steps (DDP needs every rank in every all-reduce).
    """

    @property
    def fields(self) -> tuple[Field, ...]:
        """One :class:`Field` per categorical column."""

    @property
    def n_dense(self) -> int:
        """Number of dense (numeric) feature columns; 0 when there are none."""

    def n_rows(self, split: str) -> int:
        """Rows of ``split`` (``"train"``, ``"valid"`` or ``"test"``)."""

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
    ) -> Iterator[CTRBatchLike]:
        """Rank ``rank``'s batches of ``split``, at most ``batch_size`` rows each.

        ``shuffle_buffer > 0`` shuffles, seeded by ``seed`` and ``epoch``; ``drop_last`` leaves
        out a short last batch.
        """

    def steps_per_epoch(self, split: str, batch_size: int, rank: int, world_size: int) -> int:
        """Optimizer steps in one epoch of ``split``, the same on every rank."""

    def to_memory(self, split: str) -> CTRDataset:
        """The whole ``split`` as an in-memory :class:`CTRDataset`."""


class MemorySource:
    """An in-memory :class:`~embedlab.data.CTRSplits` served as a :class:`BatchSource`.

    Global batch ``i`` of an epoch is rows ``order[i*B : (i+1)*B]`` with
    ``B = batch_size * world_size``; rank ``r`` takes the contiguous block
    ``[r*batch_size, (r+1)*batch_size)`` of it (a short last batch is cut into
    ``world_size`` near-equal blocks). The union over ranks is therefore exactly the
    one-process batch, so DDP with a global batch ``B`` takes the same steps as one
    process with ``batch_size=B``. A last global batch with fewer rows than
    ``world_size`` is left out of ``steps_per_epoch`` (some rank would have no row to
    train on) but still yielded to the ranks that have rows (evaluation sees every row).

    ``order`` is the identity when ``shuffle_buffer == 0`` and otherwise a full
    permutation (the limit of any shuffle buffer): the ``epoch + 1``-th
    ``torch.randperm`` of a generator seeded with ``seed``, which is the order
    :class:`~embedlab.training.CTRTrainer` walks in epoch ``epoch + 1`` of a phase.

    Args:
        splits: the train / valid / test data. Behaviour histories are not streamed
            (no history field in :class:`CTRBatchLike`), so ``splits`` must have none.
    """

    def __init__(self, splits: CTRSplits) -> None:
        if not isinstance(splits, CTRSplits):
            raise TypeError(f"splits must be a CTRSplits, got {type(splits).__name__}")
        if splits.train.history is not None:
            raise ValueError(
                "splits must carry no behaviour history: streamed batches have ids, labels "
                "and dense features only"
            )
        self.splits = splits

    @property
    def fields(self) -> tuple[Field, ...]:
        """The fields of the splits."""
        return self.splits.fields

    @property
    def n_dense(self) -> int:
        """Number of dense (numeric) feature columns; 0 when there are none."""
        dense = self.splits.train.dense
        return 0 if dense is None else int(dense.shape[1])

    def to_memory(self, split: str) -> CTRDataset:
        """The whole ``split`` (``"train"``, ``"valid"`` or ``"test"``) as a CTRDataset."""
        data: CTRDataset = getattr(self.splits, check_choice("split", split, SPLITS))
        return data

    def n_rows(self, split: str) -> int:
        """Rows of ``split`` (``"train"``, ``"valid"`` or ``"test"``)."""
        return len(self.to_memory(split))

    def steps_per_epoch(self, split: str, batch_size: int, rank: int, world_size: int) -> int:
        """Global batches in which every rank has at least one row (the same on every rank)."""
        batch_size, world_size = _check_rank(batch_size, rank, world_size)
        full, rest = divmod(self.n_rows(split), batch_size * world_size)
        return full + int(rest >= world_size)

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
    ) -> Iterator[TensorBatch]:
        """Rank ``rank``'s block of each global batch (see the class docstring).

        Yields:
            :class:`TensorBatch` with ids ``(b, n_fields)``, labels ``(b,)``, dense
            ``(b, n_dense)`` or None, ``b <= batch_size``.
        """
        batch_size, world_size = _check_rank(batch_size, rank, world_size)
        check_int("shuffle_buffer", shuffle_buffer, min_value=0)
        check_int("epoch", epoch, min_value=0)
        data = self.to_memory(split)
        n, step = len(data), batch_size * world_size
        if shuffle_buffer > 0:
            generator = torch.Generator().manual_seed(check_int("seed", seed, min_value=0))
            for _ in range(epoch + 1):  # the same draws as CTRTrainer's epoch-by-epoch shuffle
                order = torch.randperm(n, generator=generator).numpy()
        else:
            order = np.arange(n)
        ids, labels = torch.from_numpy(data.ids), torch.from_numpy(data.labels)
        dense = None if data.dense is None else torch.from_numpy(data.dense)
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            if hi - lo < step and drop_last:
                return
            block = np.array_split(order[lo:hi], world_size)[rank]
            if block.size == 0:  # a last batch with fewer rows than ranks
                return
            rows = torch.from_numpy(block)
            yield TensorBatch(
                ids=ids[rows], labels=labels[rows], dense=None if dense is None else dense[rows]
            )


def _check_rank(batch_size: int, rank: int, world_size: int) -> tuple[int, int]:
    batch_size = check_int("batch_size", batch_size, min_value=1)
    world_size = check_int("world_size", world_size, min_value=1)
    check_int_in_range("rank", rank, 0, world_size - 1, why=" (world_size - 1)")
    return batch_size, world_size
