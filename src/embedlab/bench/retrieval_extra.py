"""Filtered and multi-vector sweeps of the retrieval suite (issue 5, part 6).

Two sweeps that ``embedlab bench retrieval --filters`` / ``--multivector`` add to the
retrieval records; ``benchmarks/filtered_search.py`` and ``benchmarks/muvera_dbpedia.py`` are
thin wrappers around them.

:func:`run_filtered_bench` — filtered search by selectivity. One categorical attribute column
per selectivity ``s``, uniform over ``round(1 / s)`` values and independent of the vectors
(:func:`selectivity_attributes`); every query filters on a random value of the column, so a
batch holds many different filters and the planner decides per query. Each strategy answers
the whole batch in one ``FilteredIndex.search`` call: ``recall@k`` is against exact filtered
search (brute force on the rows matching each query's filter, :func:`exact_filtered_search`;
a query whose filter matches nothing counts as 1.0, see :func:`recall_at_k`), ``qps`` =
queries / wall time of that call on the machine's threads. Records: suite ``"retrieval"``,
dataset ``"{name}/filtered"``, method ``"filtered:{strategy}@{s:%}"`` (``"filtered:auto@1%"``);
for ``auto`` the params hold what the planner chose (``planner``: ``{strategy: queries}``).
Sweeping ``"hnsw"`` gives the index an ``HNSW32`` base (then also used by ``post`` and, in
place of a second graph, by the planner), so ``auto`` with and without it differ.

:func:`run_multivector_bench` — MUVERA against exact Chamfer; it lives in
:mod:`embedlab.bench._multivector_bench` (re-exported here).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from embedlab import __version__
from embedlab._validation import check_int
from embedlab.bench._multivector_bench import (
    BRUTE_FORCE_METHOD,
    DEFAULT_CANDIDATES,
    DEFAULT_GRID,
    DEFAULT_K_PRIMES,
    MULTIVECTOR_MODEL,
    concat_sets,
    run_multivector_bench,
)
from embedlab.bench._record import BenchRecord
from embedlab.bench.retrieval import Metric, exact_search, recall_at_k
from embedlab.data.retrieval import RetrievalData

__all__ = [
    "BRUTE_FORCE_METHOD",
    "DEFAULT_CANDIDATES",
    "DEFAULT_GRID",
    "DEFAULT_K_PRIMES",
    "DEFAULT_SELECTIVITIES",
    "EXTRA_COLUMNS",
    "FILTER_HNSW_BASE",
    "FILTER_STRATEGIES",
    "MULTIVECTOR_MODEL",
    "column_name",
    "concat_sets",
    "exact_filtered_search",
    "extra_summary_rows",
    "is_extra_record",
    "run_filtered_bench",
    "run_multivector_bench",
    "selectivity_attributes",
]

DEFAULT_SELECTIVITIES: tuple[float, ...] = (0.5, 0.1, 0.01, 0.001)
FILTER_STRATEGIES: tuple[str, ...] = ("pre", "post", "acorn", "hnsw", "auto")
#: the unfiltered base index built when the ``"hnsw"`` strategy is swept (faiss' HNSW searched
#: with the predicate as an ``IDSelectorBitmap``)
FILTER_HNSW_BASE = "HNSW32"


# -- filtered search -------------------------------------------------------------------------


def column_name(selectivity: float) -> str:
    """The attribute column of a selectivity: ``0.01 -> "s0_01"``."""
    return "s" + f"{selectivity:g}".replace(".", "_")


def _n_values(selectivity: float) -> int:
    return max(1, round(1 / selectivity))


def selectivity_attributes(
    n: int, selectivities: Sequence[float], seed: int = 0
) -> dict[str, np.ndarray]:
    """One categorical column per selectivity ``s``: uniform over ``round(1/s)`` values."""
    rng = np.random.default_rng(seed + 1)
    return {column_name(s): rng.integers(0, _n_values(s), n) for s in selectivities}


def exact_filtered_search(
    corpus: np.ndarray,
    queries: np.ndarray,
    column: np.ndarray,
    values: np.ndarray,
    k: int,
    *,
    metric: Metric = "cos",
) -> np.ndarray:
    """Exact top-``k`` rows of query ``i`` among the rows where ``column == values[i]``.

    Brute force on each value's subset; ``-1`` pads where fewer than ``k`` rows match.
    """
    rows = np.full((queries.shape[0], k), -1, dtype=np.int64)
    for v in np.unique(values):
        members = np.flatnonzero(values == v)
        subset = np.flatnonzero(column == v)
        if subset.size == 0:
            continue
        _, found = exact_search(corpus[subset], queries[members], k, metric=metric)
        rows[members] = np.where(found >= 0, subset[np.maximum(found, 0)], -1)
    return rows


def _check_selectivities(selectivities: Sequence[float]) -> list[float]:
    sels = [float(s) for s in selectivities]
    if not sels or any(not 0 < s <= 1 for s in sels):
        raise ValueError(f"selectivities must be a non-empty list in (0, 1], got {selectivities!r}")
    return sels


def run_filtered_bench(
    data: RetrievalData,
    selectivities: Sequence[float] = DEFAULT_SELECTIVITIES,
    k: int = 10,
    strategies: Sequence[str] = FILTER_STRATEGIES,
    seed: int = 0,
    *,
    metric: Metric = "cos",
    on_record: Callable[[BenchRecord], None] | None = None,
) -> list[BenchRecord]:
    """Filtered search on ``data.corpus`` by selectivity x strategy (see the module docstring).

    Queries are ``data.exact_queries`` (held-out vectors, else the real queries).

    Returns:
        One record per (selectivity, strategy), selectivities in the given order.
    """
    from embedlab.index import index_factory
    from embedlab.index.filtered import STRATEGIES, FilteredIndex

    check_int("k", k, min_value=1)
    check_int("seed", seed, min_value=0)
    sels = _check_selectivities(selectivities)
    strats = list(strategies)
    bad = [s for s in strats if s not in STRATEGIES]
    if not strats or bad:
        raise ValueError(f"strategies must be among {', '.join(FILTER_STRATEGIES)}, got {strats}")
    x, q = data.corpus, data.exact_queries
    if q.shape[0] == 0:
        raise ValueError(f"{data.name}: no queries to measure (no real or held-out queries)")
    n = x.shape[0]
    attrs = selectivity_attributes(n, sels, seed)
    base = index_factory(x.shape[1], FILTER_HNSW_BASE, metric=metric) if "hnsw" in strats else None
    index = FilteredIndex(
        x.shape[1],
        metric=metric,
        columns={column_name(s): "categorical" for s in sels},
        base=base,
        seed=seed,
    )
    t0 = time.perf_counter()
    index.add(x, attrs=attrs)
    build_s = time.perf_counter() - t0
    warm = {column_name(sels[0]): 0}  # compile / load the numba kernels outside the timings
    for strategy in strats:
        index.search(q[:4], k, filter=warm, strategy=strategy)  # type: ignore[arg-type]
    ram_total = int(index.memory_bytes())
    rng = np.random.default_rng(seed + 2)
    records: list[BenchRecord] = []
    for s in sels:
        col = column_name(s)
        values = np.asarray(rng.integers(0, _n_values(s), size=q.shape[0]), dtype=np.int64)
        filters = [{col: int(v)} for v in values]
        truth = exact_filtered_search(x, q, attrs[col], values, k, metric=metric)
        matching = float(np.mean(attrs[col][None, :] == values[:, None]))
        for strategy in strats:
            t0 = time.perf_counter()
            _, ids = index.search(q, k, filter=filters, strategy=strategy)  # type: ignore[arg-type]
            dt = max(time.perf_counter() - t0, 1e-9)
            params: dict[str, Any] = {
                "selectivity": s,
                "measured_selectivity": matching,
                "strategy": strategy,
                "column": col,
                "k": k,
                "metric": metric,
                "n_corpus": n,
                "n_queries": int(q.shape[0]),
                "ram_bytes_total": ram_total,
                "ram_bytes_per_vector": ram_total / n,
                "base": None if base is None else FILTER_HNSW_BASE,
            }
            if strategy == "auto":
                counts = Counter(p.strategy for p in index.last_plan)
                params["planner"] = dict(counts.most_common())
            record = BenchRecord(
                suite="retrieval",
                dataset=f"{data.name}/filtered",
                method=f"filtered:{strategy}@{s * 100:g}%",
                model=data.model,
                memory_bytes=round(ram_total / n),
                metrics={f"recall@{k}": recall_at_k(ids, truth, k)},
                timing={"qps": q.shape[0] / dt, "search_s": dt, "build_s": build_s},
                params=params,
                seed=seed,
                embedlab_version=__version__,
            )
            records.append(record)
            if on_record is not None:
                on_record(record)
    return records


EXTRA_COLUMNS: tuple[str, ...] = ("method", "point", "R@k", "QPS", "note", "status")


def is_extra_record(record: BenchRecord) -> bool:
    """A record of the filtered or multi-vector sweep (not of ``--methods``)."""
    return record.method.startswith("filtered:") or record.model == MULTIVECTOR_MODEL


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return format(value, spec)


def extra_summary_rows(records: Sequence[BenchRecord]) -> list[tuple[str, ...]]:
    """One row of strings per record, in :data:`EXTRA_COLUMNS` order."""
    rows: list[tuple[str, ...]] = []
    for r in records:
        p = r.params
        k = p.get("k", 10)
        if "selectivity" in p:
            point = f"s={p['selectivity']:g}"
        elif "candidates" in p:
            point = f"C={p['candidates']}"
        elif "k_prime" in p:
            point = f"k'={p['k_prime']}"
        else:
            point = "-"
        if isinstance(p.get("planner"), dict):
            note = ", ".join(f"{s} {c}" for s, c in p["planner"].items())
        elif "mean_candidates" in p:
            note = f"mean C {p['mean_candidates']:.1f}"
        else:
            note = ""
        rows.append(
            (
                r.method,
                point,
                _fmt(r.metrics.get(f"recall@{k}"), ".4f"),
                _fmt(r.timing.get("qps"), ",.1f"),
                note,
                r.status,
            )
        )
    return rows
