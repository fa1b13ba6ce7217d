"""Streamed index builds from ``.npy`` shards: train on a sample, add chunk by chunk.

Memory is bounded by the index plus one chunk (and the training sample): the vectors are
read in chunks with plain file reads (:func:`embedlab.data.iter_npy_shards`), never loaded
whole or memory-mapped, normalised in place (for ``cos``), and the index storage grows
geometrically without copies.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from embedlab._validation import check_int
from embedlab.index._base import Metric, VectorIndex

__all__ = ["build_index"]


def build_index(
    vectors: str | os.PathLike[str],
    spec: str,
    *,
    metric: Metric = "cos",
    ids: np.ndarray | None = None,
    train_size: int = 200_000,
    chunk_rows: int = 65_536,
    seed: int = 0,
    on_progress: Callable[[int, int], None] | None = None,
    **kwargs: Any,
) -> VectorIndex:
    """Build the index ``spec`` over a ``.npy`` file or a folder of ``.npy`` shards.

    Args:
        vectors: a ``(n, dim)`` ``.npy`` file or a folder of them (see
            :func:`embedlab.data.list_npy_shards`).
        spec: the index spec (``"IVF4096,Binary,Rerank(Flat)"``).
        metric: ``"cos"``, ``"ip"`` or ``"l2"``.
        ids: ``(n,)`` ids (default ``0..n-1``).
        train_size: vectors sampled uniformly across the shards to train on (indexes that
            need no training skip it).
        chunk_rows: rows read and added at a time.
        seed: seed of the training sample.
        on_progress: called as ``on_progress(rows_added, n)`` after each chunk.
        kwargs: passed to :func:`embedlab.index.index_factory` (``storage=``, ``seed=``).

    Raises:
        ValueError: a bad shard (named), ``ids`` of the wrong length, or what the index
            raises (too few training vectors, ...).
    """
    from embedlab.data.shards import iter_npy_shards, list_npy_shards, sample_npy_shards
    from embedlab.index.factory import index_factory

    train_size = check_int("train_size", train_size, min_value=1)
    shards = list_npy_shards(vectors)
    n, dim = sum(s.rows for s in shards), shards[0].dim
    if ids is not None:
        ids = np.asarray(ids)
        if ids.shape != (n,):
            raise ValueError(f"ids must have shape ({n},) to match the vectors, got {ids.shape}")
    try:
        index = index_factory(dim, spec, metric=metric, **kwargs)
    except ValueError as exc:
        raise ValueError(f"index spec {spec!r} on {dim}-dim vectors: {exc}") from None
    # the sample and the chunks are read here, so they are normalised in place (no copies)
    if not index.is_trained:  # Flat, Binary, ... need none: no sample is read for them
        sample = sample_npy_shards(vectors, train_size, seed=seed)
        if type(index).train is VectorIndex.train:
            index._train_prepared(index._prepare(sample, "x", inplace=True))
        else:
            index.train(sample)
        del sample

    def batches() -> Iterator[Any]:
        done = 0
        for chunk in iter_npy_shards(vectors, chunk_rows=chunk_rows):
            m = chunk.shape[0]
            yield chunk if ids is None else (chunk, ids[done : done + m])
            del chunk  # not alive while the next chunk is read
            done += m
            if on_progress is not None:
                on_progress(done, n)

    index._add_batches(batches(), inplace=True)
    return index
