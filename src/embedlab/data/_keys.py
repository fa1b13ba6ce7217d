"""Vocabularies over 64-bit keys, counted while streaming, and the split rule of prepared shards.

Every raw value of a field becomes a 64-bit *key*: integers (Criteo count buckets,
libFM indices) are their own key; strings are hashed with pandas' ``hash_array``
(SipHash-2-4 of the UTF-8 text under pandas' fixed default key), so two distinct
strings of one field share a key with probability about ``n^2 / 2^65`` (1e-5 for
``n = 10^7`` distinct values). Counting is numpy only: each chunk's keys are reduced
to distinct keys and merged into sorted arrays (keys, counts, first row), never a
Python object per value: a chunk is factorised (one hash-table pass), so only its
distinct values are hashed, counted and looked up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

__all__ = ["SPLITS", "FieldVocab", "KeyCounter", "split_of_rows", "value_keys"]

SPLITS: tuple[str, ...] = ("train", "valid", "test")
_MERGE_MIN = 1 << 20  # pending distinct keys that always fit before a merge
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser of ``x + 0x9E3779B97F4A7C15`` (uint64, wrapping)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return np.asarray(z ^ (z >> np.uint64(31)), dtype=np.uint64)


def split_of_rows(rows: np.ndarray, *, seed: int, fractions: Sequence[float]) -> np.ndarray:
    """Which split each global row number goes to: ``0`` train, ``1`` valid, ``2`` test.

    ``u(r) = (splitmix64(r + splitmix64(seed)) >> 11) / 2**53`` is uniform in
    ``[0, 1)``; row ``r`` is train if ``u < f0``, valid if ``u < f0 + f1``, else test.
    It depends only on the row number and the seed, so any chunking gives the same split.

    Args:
        rows: ``(m,)`` 0-based row numbers in the log (data rows, over all its files).
        seed: the split seed.
        fractions: ``(f0, f1, f2)``.

    Returns:
        ``(m,)`` int8.
    """
    salt = splitmix64(np.array([seed], dtype=np.uint64))
    with np.errstate(over="ignore"):
        h = splitmix64(np.asarray(rows, dtype=np.uint64) + salt)
    u = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    f0, f1 = float(fractions[0]), float(fractions[1])
    return ((u >= f0).astype(np.int8) + (u >= f0 + f1)).astype(np.int8)


def value_keys(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(keys (u,) uint64, codes (m,) int64)``: the distinct values of ``values`` ``(m,)``
    as keys, in order of first appearance, and the index of each row's value in them.

    An integer is its own key; text (a pandas string array or object array) is hashed,
    one hash per distinct value of the chunk.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    u = np.asarray(uniques)
    if u.dtype.kind in "iu":
        keys = u.astype(np.int64, copy=False).view(np.uint64)
    else:
        keys = np.asarray(pd.util.hash_array(u.astype(object, copy=False)), dtype=np.uint64)
    return keys, np.asarray(codes, dtype=np.int64)


class KeyCounter:
    """Counts of the keys of one field, with the first row each key was seen in.

    Each chunk arrives reduced to its distinct keys (with counts and first rows) and
    is kept pending; pending runs are merged into the sorted arrays when they outgrow
    them (so the total cost is ``O(n log n)`` in the number of distinct keys, and
    memory is about 24 bytes per distinct key plus the pending runs).

    Example:
        >>> c = KeyCounter()
        >>> c.add(*value_keys(np.array([7, 5, 7])), first_row=0)
        >>> c.add(*value_keys(np.array([5, 9])), first_row=3)
        >>> v = c.finalize(min_count=2, order="count")
        >>> v.lookup(np.array([5, 7, 9], dtype=np.uint64)).tolist(), v.cardinality
        ([2, 1, 0], 3)
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._keys = np.zeros(0, dtype=np.uint64)
        self._counts = np.zeros(0, dtype=np.int64)
        self._first = np.zeros(0, dtype=np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_n = 0

    def add(self, keys: np.ndarray, codes: np.ndarray, *, first_row: int) -> None:
        """Count the rows ``first_row + i`` whose key is ``keys[codes[i]]``.

        Args:
            keys: ``(u,)`` uint64 distinct keys of a chunk, in order of first appearance
                (as :func:`value_keys` gives them).
            codes: ``(m,)`` int64 index of each row's key in ``keys``.
        """
        counts = np.bincount(codes, minlength=len(keys)).astype(np.int64)
        first = np.empty(len(keys), dtype=np.int64)
        rows = np.arange(first_row, first_row + len(codes), dtype=np.int64)
        first[codes[::-1]] = rows[::-1]  # the last write wins: each key's first row
        self._pending.append((keys, counts, first))
        self._pending_n += len(keys)
        if self._pending_n > max(len(self._keys), _MERGE_MIN):
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        parts = [(self._keys, self._counts, self._first), *self._pending]
        self._pending, self._pending_n = [], 0
        keys = np.concatenate([p[0] for p in parts])
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        counts = np.concatenate([p[1] for p in parts])[order]
        first = np.concatenate([p[2] for p in parts])[order]
        del order
        start = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        self._keys = keys[start]
        self._counts = np.add.reduceat(counts, start)
        self._first = np.minimum.reduceat(first, start)

    def __len__(self) -> int:
        self._merge()
        return len(self._keys)

    def finalize(self, *, min_count: int, order: Literal["count", "index"]) -> FieldVocab:
        """The vocabulary: keys seen at least ``min_count`` times get ids.

        ``"count"``: id 0 is out of vocabulary, kept keys get ``1..n`` by count
        (most frequent first), ties by first appearance — the order of
        :class:`~embedlab.data._encode.ColumnVocab`. ``"index"``: kept keys get ids by
        key value (libFM's sorted global indices), from 0 when ``min_count == 1``
        (nothing is out of vocabulary), else from 1 with id 0 out of vocabulary.
        """
        self._merge()
        keys, counts, first = self._keys, self._counts, self._first
        kept = np.flatnonzero(counts >= min_count)
        if order == "count":
            kept = kept[np.lexsort((first[kept], -counts[kept]))]
            offset = 1
        else:
            offset = 0 if min_count == 1 else 1
        oov_rows = int(counts.sum() - counts[kept].sum())
        vocab = FieldVocab(
            keys=keys[kept],
            counts=counts[kept],
            offset=offset,
            oov_values=len(keys) - len(kept),
            oov_rows=oov_rows,
        )
        self._reset()  # the counts are no longer needed
        return vocab


@dataclass(frozen=True)
class FieldVocab:
    """The final vocabulary of one field.

    Args:
        keys: ``(n,)`` uint64 kept keys in id order: key ``keys[i]`` has id ``i + offset``.
        counts: ``(n,)`` int64 rows holding each kept key.
        offset: 1 when id 0 is the out-of-vocabulary id, else 0.
        oov_values: distinct keys dropped (rarer than ``min_count``).
        oov_rows: rows whose value was dropped (they get id 0).
    """

    keys: np.ndarray
    counts: np.ndarray
    offset: int
    oov_values: int = 0
    oov_rows: int = 0
    _sorted: np.ndarray = field(init=False, repr=False)  # (n,) keys, sorted
    _ids: np.ndarray = field(init=False, repr=False)  # (n,) the id of each sorted key

    def __post_init__(self) -> None:
        order = np.argsort(self.keys, kind="stable")
        object.__setattr__(self, "_sorted", self.keys[order])
        object.__setattr__(self, "_ids", (order + self.offset).astype(np.int64))

    @property
    def cardinality(self) -> int:
        return len(self.keys) + self.offset

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """``(m,)`` int64 ids of ``keys`` ``(m,)`` uint64; a key not kept gets id 0."""
        codes, uniq = pd.factorize(keys)  # a chunk repeats its hot keys: search each once
        uniq = np.asarray(uniq, dtype=np.uint64)
        sorted_keys, ids = self._sorted, self._ids
        if len(sorted_keys) == 0:
            return np.zeros(len(keys), dtype=np.int64)
        pos = np.minimum(np.searchsorted(sorted_keys, uniq), len(sorted_keys) - 1)
        hit = sorted_keys[pos] == uniq
        return np.asarray(np.where(hit, ids[pos], 0)[codes], dtype=np.int64)
