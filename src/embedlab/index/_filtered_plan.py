"""Planning of :class:`~embedlab.index.filtered.FilteredIndex` searches: the filters of a
call compiled per query, and the ``"auto"`` planner's choice of strategy for one filter.

The rules and the measurements behind the planner's defaults are in the docstring of
:mod:`embedlab.index.filtered`, which re-exports :class:`Plan`, :data:`Strategy` and
:data:`STRATEGIES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from embedlab.index.attributes import AttributeStore, Predicate

__all__ = ["PRE_BATCH_GAIN", "STRATEGIES", "Plan", "Strategy", "compile_filters", "plan_filter"]

#: filtering strategy of :class:`FilteredIndex` (see the module docstring)
Strategy = Literal["auto", "pre", "post", "acorn", "hnsw"]
STRATEGIES: tuple[str, ...] = ("acorn", "auto", "hnsw", "post", "pre")
PRE_BATCH_GAIN = 8  # pre_max_rows is multiplied by min(queries sharing the filter, this)


@dataclass(frozen=True)
class Plan:
    """How one query was answered.

    Args:
        strategy: ``"pre"``, ``"post"``, ``"acorn"``, ``"hnsw"``, or ``"none"`` (no filter,
            or an empty index).
        selectivity: share of rows the filter keeps, estimated or exact (1.0 without filter).
        rows: matching rows, estimated or exact.
        exact: whether ``selectivity``/``rows`` are exact counts.
        fetched: for post-filtering, the candidates fetched in the last round (else 0).
    """

    strategy: str
    selectivity: float
    rows: int
    exact: bool
    fetched: int = 0


def compile_filters(attributes: AttributeStore, filter: Any, n_q: int) -> list[Predicate | None]:
    """One compiled predicate (or ``None``: no filter) per query from the ``filter`` argument
    of :meth:`FilteredIndex.search`: a dict for every query, a list of ``n_q`` dicts or
    ``None``s, or ``None``. A dict listed several times is compiled once."""
    if filter is None:
        return [None] * n_q
    if isinstance(filter, Mapping):
        pred = attributes.compile(filter)
        return [pred] * n_q
    if isinstance(filter, Sequence) and not isinstance(filter, (str, bytes)):
        if len(filter) != n_q:
            raise ValueError(
                f"filter must be one dict or a list of one filter per query ({n_q}), "
                f"got a list of {len(filter)}"
            )
        cache: dict[int, Predicate | None] = {}
        out: list[Predicate | None] = []
        for f in filter:
            if f is None:
                out.append(None)
                continue
            if id(f) not in cache:
                cache[id(f)] = attributes.compile(f)
            out.append(cache[id(f)])
        return out
    raise TypeError(
        f"filter must be a dict, a list of dicts (one per query) or None, got "
        f"{type(filter).__name__}"
    )


def plan_filter(
    attributes: AttributeStore,
    pred: Predicate,
    n: int,
    n_queries: int,
    *,
    pre_max_rows: int,
    acorn_min_selectivity: float,
    post_min_selectivity: float,
    graph_strategy: Callable[[], str],
) -> tuple[Plan, np.ndarray | None]:
    """The ``"auto"`` plan for ``pred`` over ``n`` rows, shared by ``n_queries`` queries, and
    the mask of matching rows when it was evaluated (``None`` for a plan made on the
    estimate alone). The thresholds are :class:`FilteredIndex`'s; ``graph_strategy()`` names
    the in-graph strategy (``"acorn"`` or ``"hnsw"``). See the :mod:`embedlab.index.filtered`
    docstring for the rules and the measurements behind the defaults."""
    # Queries sharing a filter share one gather of the matching rows and one matmul, so
    # pre-filtering pays off for more rows (measured: x8 at 100k x 384, see the module).
    pre_rows = pre_max_rows * min(max(n_queries, 1), PRE_BATCH_GAIN)
    est = attributes.estimate(pred)
    if est.rows > pre_rows and est.fraction >= post_min_selectivity:
        return Plan("post", est.fraction, est.rows, est.exact), None
    mask = attributes.mask(pred)
    rows = int(np.count_nonzero(mask))
    frac = rows / n
    if rows <= pre_rows or frac < acorn_min_selectivity:
        strategy = "pre"
    elif frac >= post_min_selectivity:
        strategy = "post"
    else:
        strategy = graph_strategy()
    return Plan(strategy, frac, rows, True), mask
