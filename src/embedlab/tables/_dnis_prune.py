"""DNIS's prune-to-budget step: the pruning rules and the selection with a per-field floor.

- :data:`PRUNE_RULES`: how a (group, dim) entry of the soft selection layer is scored.
  ``"entry"`` is the paper's rule (each entry stands on its own weight ``|alpha[g, d]|``);
  ``"group"`` scores the mean output magnitude ``|alpha[g, d]| * mean_{id in g} |v[id, d]|``;
  ``"auto"`` cuts with both and keeps the one with the better validation AUC.
- :func:`select_with_floor`: keep entries by decreasing score while the deployable bytes
  fit the budget (:meth:`GroupLayout.select`'s greedy), after first reserving one entry
  per field, so that no field ends with zero dims.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embedlab.tables._dim_groups import GroupLayout

__all__ = ["PRUNE_RULES", "floor_entries", "select_with_floor"]

#: the pruning rules of :class:`~embedlab.tables.dnis.DNISTable`
PRUNE_RULES = ("auto", "entry", "group")


def floor_entries(
    layout: GroupLayout, score: np.ndarray, head_groups: Sequence[int], budget_bytes: int
) -> list[tuple[int, int]]:
    """One ``(group, dim)`` entry per field that the budget reserves before the ranking.

    For every field the candidate is its most frequent group (``head_groups[f]``) at that
    group's best-scored dim. Candidates are reserved by increasing cost (the group's ids,
    header and one column) while their total fits ``budget_bytes``, so a budget too small
    for all of them still floors the cheapest fields.

    Args:
        layout: the storage layout of the groups.
        score: ``(n_groups, dim)`` score of each entry.
        head_groups: the most frequent group of each field.
        budget_bytes: the most bytes the reserved entries may use.

    Returns:
        The reserved entries, cheapest first.
    """
    cost = layout.dim_bytes() + layout.fixed_bytes()
    heads = sorted(head_groups, key=lambda g: (int(cost[g]), g))
    out: list[tuple[int, int]] = []
    used = 0
    for g in heads:
        if used + int(cost[g]) > budget_bytes:
            break
        out.append((int(g), int(np.argmax(score[g]))))
        used += int(cost[g])
    return out


def select_with_floor(
    layout: GroupLayout,
    score: np.ndarray,
    budget_bytes: int,
    floor: Sequence[tuple[int, int]] = (),
) -> np.ndarray:
    """Keep the ``floor`` entries, then the best-scored entries that still fit.

    Entries are visited by decreasing score (ties: lower flat index first) and each is
    kept if the bytes so far plus its cost (its column of the group; plus the group's
    ids and header for the group's first kept dim) fit ``budget_bytes``; an entry that
    does not fit is skipped, so cheaper ones further down can use what is left. Entries
    of score ``<= 0`` are kept only as part of the floor.

    Args:
        layout: the storage layout of the groups.
        score: ``(n_groups, dim)`` score of each entry.
        budget_bytes: the most bytes of the kept entries.
        floor: entries kept first, regardless of score (they must fit the budget).

    Returns:
        ``(n_groups, dim)`` bool, the entries kept.

    Raises:
        ValueError: when the floor alone does not fit ``budget_bytes``.
    """
    n_groups, dim = score.shape
    keep = np.zeros((n_groups, dim), dtype=bool)
    dim_bytes, fixed = layout.dim_bytes(), layout.fixed_bytes()
    used = 0
    for g, d in floor:
        used += int(dim_bytes[g]) + (0 if keep[g].any() else int(fixed[g]))
        keep[g, d] = True
    if used > budget_bytes:
        raise ValueError(f"floor must fit budget_bytes={budget_bytes}, needs {used} bytes")
    flat = score.ravel()
    for pair in np.argsort(-flat, kind="stable"):
        if flat[pair] <= 0:
            break
        g, d = divmod(int(pair), dim)
        if keep[g, d]:
            continue
        extra = int(dim_bytes[g]) + (0 if keep[g].any() else int(fixed[g]))
        if used + extra <= budget_bytes:
            keep[g, d] = True
            used += extra
    return keep
