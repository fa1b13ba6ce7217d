"""Budget arithmetic shared by the hashed-row tables (``hash``, ``int8``, ``int16``).

A row plan gives every field a number of rows: fields whose cardinality is at
most their fair share keep one row per id (no hashing); the remaining rows are
split among the large fields in proportion to their cardinality, and those
fields are hashed into their rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from embedlab._validation import BudgetError
from embedlab.tables._hashing import universal_hash

__all__ = ["HASH_COEF_BYTES", "allocate_rows", "hashed_local_rows", "plan_rows"]

#: one (a, b) pair of int64 hash coefficients
HASH_COEF_BYTES = 16


def allocate_rows(cardinalities: Sequence[int], total: int) -> list[int]:
    """Split ``total`` rows among fields.

    Fields whose cardinality is at most an equal share of the rows still free keep
    a full table (repeated until no more field qualifies); the rest share the
    remaining rows in proportion to cardinality, at least one row each
    (largest-remainder rounding). The result satisfies ``1 <= rows[f] <= card[f]``
    and ``sum(rows) <= total``.

    Raises:
        ValueError: ``total`` is smaller than the number of fields.
    """
    n = len(cardinalities)
    if total < n:
        raise ValueError(f"total must be >= the number of fields {n}, got {total}")
    if sum(cardinalities) <= total:
        return list(cardinalities)
    rows = [0] * n
    free = list(range(n))
    left = total
    changed = True
    while changed:
        changed = False
        share = left / len(free)
        for f in list(free):
            if cardinalities[f] <= share:
                rows[f] = cardinalities[f]
                left -= cardinalities[f]
                free.remove(f)
                changed = True
    # At least one field is left: the full tables alone do not exhaust `total`.
    spare = left - len(free)  # one row each is guaranteed first
    card_sum = sum(cardinalities[f] for f in free)
    exact = {f: spare * cardinalities[f] / card_sum for f in free}
    for f in free:
        rows[f] = 1 + int(exact[f])
    leftover = left - sum(rows[f] for f in free)
    for f in sorted(free, key=lambda g: exact[g] - int(exact[g]), reverse=True):
        if leftover <= 0:
            break
        if rows[f] < cardinalities[f]:
            rows[f] += 1
            leftover -= 1
    return rows


def plan_rows(
    method: str,
    cardinalities: Sequence[int],
    budget_bytes: int,
    row_bytes: int,
    *,
    overhead_bytes: int,
    compression: float,
) -> list[int]:
    """Rows per field for tables that store ``row_bytes`` per row plus ``overhead_bytes``.

    Raises:
        BudgetError: not even one row per field fits; the message gives the minimum.
    """
    n = len(cardinalities)
    total = (budget_bytes - overhead_bytes) // row_bytes
    if total < n:
        need = n * row_bytes + overhead_bytes
        raise BudgetError(
            f"{method} cannot reach compression {compression:g} for these fields: "
            f"needs at least {need} bytes, budget is {budget_bytes}"
        )
    return allocate_rows(cardinalities, total)


def hashed_local_rows(
    ids: torch.Tensor,
    coef: torch.Tensor,
    rows: torch.Tensor,
    hashed: torch.Tensor,
    cardinalities: torch.Tensor,
) -> torch.Tensor:
    """Row of every id inside its field's block.

    Args:
        ids: ``(batch, n_fields)`` int64, non-negative.
        coef: ``(n_fields, 2)`` hash coefficients, one pair per field.
        rows: ``(n_fields,)`` rows of each field's block.
        hashed: ``(n_fields,)`` bool, whether the field is hashed into its rows.
        cardinalities: ``(n_fields,)``; an unhashed field maps ``id -> id`` for
            ``id < cardinality`` and hashes larger ids (possible only in tables
            with ``strict_ids = False``).

    Returns:
        ``(batch, n_fields)`` int64 in ``[0, rows[f])``.
    """
    hashed_rows = universal_hash(ids, coef, rows)
    direct = (~hashed) & (ids < cardinalities)
    return torch.where(direct, ids, hashed_rows)
