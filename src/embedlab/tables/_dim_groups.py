"""Frequency groups and the deployable layout of per-(group, dim) kept dimensions,
shared by the dimension-search tables (see :mod:`embedlab.tables._dimsearch`).

- :func:`frequency_groups`: split a field's ids into groups of similar frequency.
- :class:`GroupLayout`: the deployable storage of per-(group, dim) kept dimensions and
  the budget-driven global selection of those pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlab._validation import BudgetError, check_int
from embedlab.tables._base import FLOAT32_BYTES
from embedlab.tables._phases import PhaseContext
from embedlab.tables._sparse import RANK_BLOCK_BITS

__all__ = [
    "GROUP_HEADER_BYTES",
    "RANK_BLOCK_BITS",
    "GroupLayout",
    "bitmap_bytes",
    "budget_error",
    "frequency_groups",
    "id_counts",
    "index_dtype",
]

#: per stored group: int32 (field, rows, kept dims) so a flat buffer can be walked
GROUP_HEADER_BYTES = 3 * 4


def bitmap_bytes(card: int) -> int:
    """Bytes of a presence bitmap over ``card`` ids plus its int32 rank directory."""
    return -(-card // 8) + 4 * -(-card // RANK_BLOCK_BITS)


def budget_error(
    method: str, compression: float, need_bytes: int, budget_bytes: int, full_bytes: int
) -> BudgetError:
    """The error for a budget below the method's smallest deployable form."""
    reach = full_bytes / need_bytes
    return BudgetError(
        f"{method} cannot reach compression {compression:g} for these fields: "
        f"needs at least {need_bytes} bytes, budget is {budget_bytes} "
        f"({method} reaches compression at most {reach:.1f}x here)"
    )


def index_dtype(n: int) -> np.dtype[Any]:
    """The smallest unsigned integer dtype that holds every value in ``[0, n)``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if n - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def id_counts(ctx: PhaseContext | None, cardinalities: Sequence[int]) -> list[np.ndarray]:
    """Occurrences of every id per field in ``ctx.train`` (all ones without a context)."""
    if ctx is None:
        return [np.ones(c, dtype=np.int64) for c in cardinalities]
    ids = ctx.train.ids
    if ids.shape[1] != len(cardinalities):
        raise ValueError(
            f"ctx.train must have the table's {len(cardinalities)} fields, got {ids.shape[1]}"
        )
    return [np.bincount(ids[:, f], minlength=c) for f, c in enumerate(cardinalities)]


def frequency_groups(counts: np.ndarray, n_groups: int) -> np.ndarray:
    """Split the ids of one field into ``min(n_groups, len(counts))`` frequency groups.

    Ids are sorted by count (most frequent first, ties by id) and cut so that every
    group holds about the same share of the occurrences: the head groups are small
    (few, frequent ids) and the last one holds the long tail and the unseen ids. Every
    group is non-empty. With uniform counts this is ``n_groups`` equal runs of ids.

    Args:
        counts: ``(cardinality,)`` non-negative occurrences of each id.
        n_groups: the most groups.

    Returns:
        ``(cardinality,)`` int64 group of each id, 0 = most frequent.
    """
    card = int(counts.shape[0])
    g = min(check_int("n_groups", n_groups, min_value=1), card)
    order = np.argsort(-counts, kind="stable")
    mass = counts[order].astype(np.float64)
    if mass.sum() <= 0:
        mass = np.ones(card)
    before = (np.cumsum(mass) - mass) / mass.sum()  # share of the mass ahead of each id
    cuts = np.searchsorted(before, np.arange(g + 1) / g, side="left")
    cuts[0], cuts[g] = 0, card
    for j in range(1, g):  # every group keeps at least one id
        cuts[j] = max(cuts[j], cuts[j - 1] + 1)
    for j in range(g - 1, 0, -1):
        cuts[j] = min(cuts[j], cuts[j + 1] - 1)
    rank_group = np.searchsorted(cuts[1:g], np.arange(card), side="right")
    groups = np.empty(card, dtype=np.int64)
    groups[order] = rank_group
    return groups


@dataclass(frozen=True)
class GroupLayout:
    """Deployable storage of a table whose groups of ids each keep a subset of dims.

    A group ``g`` with ``k_g > 0`` kept dims is stored as its float32 weights
    ``(rows_g, k_g)``, the kept dim indices ``(k_g,)`` in the smallest unsigned dtype for
    ``dim``, the membership of its ids and a 12-byte header. The membership is nothing
    when the group is the whole field (row = id); otherwise the smaller of the sorted ids
    of its rows (smallest unsigned dtype for the field's cardinality) and a presence
    bitmap over the field's ids with an int32 rank directory per 512 bits
    (:func:`bitmap_bytes`; row = rank of the id), the id list on a tie. A group with no
    kept dim is not stored: its ids read as zeros.

    Attributes:
        rows: ``(n_groups,)`` ids per group.
        fields: ``(n_groups,)`` field of each group.
        key_bytes: ``(n_groups,)`` bytes per stored id (0 for a whole-field group).
        dim: embedding dimension.
        member_bytes: ``(n_groups,)`` bytes of each group's membership.
        bitmap: ``(n_groups,)`` whether the membership is a bitmap.
    """

    rows: np.ndarray
    fields: np.ndarray
    key_bytes: np.ndarray
    dim: int
    member_bytes: np.ndarray
    bitmap: np.ndarray

    @classmethod
    def of(
        cls, group_of: np.ndarray, group_field: np.ndarray, cards: Sequence[int], dim: int
    ) -> GroupLayout:
        """The layout of ``group_of`` (global group of every id, fields concatenated)."""
        n_groups = group_field.shape[0]
        rows = np.bincount(group_of, minlength=n_groups)
        card_of = np.asarray(cards, dtype=np.int64)[group_field]
        id_bytes = np.array([index_dtype(int(c)).itemsize for c in card_of], dtype=np.int64)
        key_bytes = np.where(rows == card_of, 0, id_bytes)
        bitmap_cost = np.array([bitmap_bytes(int(c)) for c in card_of], dtype=np.int64)
        bitmap = (key_bytes > 0) & (bitmap_cost < rows * key_bytes)
        member = np.where(bitmap, bitmap_cost, rows * key_bytes)
        return cls(
            rows=rows,
            fields=group_field,
            key_bytes=key_bytes,
            dim=dim,
            member_bytes=member,
            bitmap=bitmap,
        )

    @property
    def dim_index_bytes(self) -> int:
        return index_dtype(self.dim).itemsize

    def dim_bytes(self) -> np.ndarray:
        """``(n_groups,)`` bytes each kept dim of a group adds."""
        return self.rows * FLOAT32_BYTES + self.dim_index_bytes

    def fixed_bytes(self) -> np.ndarray:
        """``(n_groups,)`` bytes a group costs once it keeps any dim (ids and header)."""
        return np.asarray(self.member_bytes + GROUP_HEADER_BYTES)

    def bytes(self, kept: np.ndarray) -> int:
        """Deployable bytes for ``kept`` (``(n_groups,)`` number of dims kept per group)."""
        kept = np.asarray(kept, dtype=np.int64)
        stored = kept > 0
        return int((kept * self.dim_bytes() + stored * self.fixed_bytes()).sum())

    def select(self, importance: np.ndarray, budget_bytes: int) -> np.ndarray:
        """Keep the most important (group, dim) pairs that fit ``budget_bytes``.

        Pairs are visited by decreasing importance and each is kept if the storage so far
        plus its cost (its column of the group; plus the group's ids and header for a
        group's first dim) still fits; pairs that do not fit are skipped, so smaller
        groups further down the ranking can still use what is left. Pairs of importance
        <= 0 are never kept.

        Args:
            importance: ``(n_groups, dim)`` score of each pair.
            budget_bytes: the most bytes the kept pairs may use.

        Returns:
            ``(n_groups, dim)`` bool, the pairs kept.
        """
        n_groups, dim = importance.shape
        keep = np.zeros((n_groups, dim), dtype=bool)
        dim_bytes, fixed = self.dim_bytes(), self.fixed_bytes()
        used = 0
        flat = importance.ravel()
        for pair in np.argsort(-flat, kind="stable"):
            if flat[pair] <= 0:
                break
            g, d = divmod(int(pair), dim)
            extra = int(dim_bytes[g]) + (0 if keep[g].any() else int(fixed[g]))
            if used + extra <= budget_bytes:
                keep[g, d] = True
                used += extra
        return keep
