"""Group benchmark records and reduce the seeds of each configuration to statistics."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from embedlab.report._numeric import pareto_frontier

if TYPE_CHECKING:
    from embedlab.bench import BenchRecord

__all__ = [
    "PRIMARY_METRICS",
    "Group",
    "Row",
    "Stat",
    "group_records",
    "is_reference",
    "primary_metric",
    "stat",
]

# The metric each suite is judged by; other suites fall back to their first metric.
PRIMARY_METRICS: dict[str, tuple[str, ...]] = {
    "ctr": ("auc",),
    "retrieval": ("recall@10",),
    "metric": ("precision_at_1",),
    "graph": ("micro_f1",),
}
# Metrics where smaller is better: the Pareto frontier flips for them.
_LOWER_IS_BETTER = frozenset({"logloss", "loss", "mse", "rmse", "mae", "error", "latency_ms"})
_ORACLE_KEY = "oracle_auc"
_REFERENCE_METHOD = "full"


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation (``None`` for one value), min and max of ``n`` values."""

    mean: float
    std: float | None
    lo: float
    hi: float
    n: int


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        if hasattr(v, "item") and callable(v.item):  # numpy / torch scalars
            return _number(v.item())
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def stat(values: Iterable[Any]) -> Stat | None:
    """Statistics of the finite numbers among ``values``; ``None`` when there are none."""
    xs = [f for v in values if (f := _number(v)) is not None]
    if not xs:
        return None
    std = statistics.stdev(xs) if len(xs) > 1 else None
    return Stat(statistics.fmean(xs), std, min(xs), max(xs), len(xs))


@dataclass
class Row:
    """All records of one (method, compression, status) in a group: one table row."""

    method: str
    compression: float | None
    status: str
    records: list[BenchRecord]
    memory: Stat | None = None
    metrics: dict[str, Stat | None] = field(default_factory=dict)
    timing: dict[str, Stat | None] = field(default_factory=dict)
    full_bytes: Stat | None = None
    on_frontier: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def seeds(self) -> list[int]:
        return sorted({r.seed for r in self.records})

    @property
    def errors(self) -> list[str]:
        return list(dict.fromkeys(r.error or "no error message recorded" for r in self.records))


@dataclass
class Group:
    """Records sharing (suite, dataset, model): one plot and one table."""

    suite: str
    dataset: str
    model: str | None
    rows: list[Row]
    metric_keys: list[str]
    timing_keys: list[str]
    primary: str | None
    maximize: bool
    reference: Row | None
    oracle: float | None

    @property
    def name(self) -> str:
        return " / ".join(p for p in (self.suite, self.dataset, self.model) if p)

    def reached(self, row: Row) -> float | None:
        """Compression reached: ``full_bytes / memory``, else memory of the reference row."""
        if row.memory is None or row.memory.mean <= 0:
            return None
        if row.full_bytes is not None:
            return row.full_bytes.mean / row.memory.mean
        ref = self.reference
        if ref is not None and ref.memory is not None:
            return ref.memory.mean / row.memory.mean
        return None

    def ref_value(self, key: str, *, timing: bool = False) -> float | None:
        ref = self.reference
        if ref is None:
            return None
        s = (ref.timing if timing else ref.metrics).get(key)
        return None if s is None else s.mean


def primary_metric(suite: str, metric_keys: Sequence[str]) -> str | None:
    """The suite's metric from :data:`PRIMARY_METRICS` if recorded, else the first metric."""
    for key in PRIMARY_METRICS.get(suite, ()):
        if key in metric_keys:
            return key
    return metric_keys[0] if metric_keys else None


def is_reference(record: BenchRecord) -> bool:
    """A run others are compared with: method ``"full"`` or ``params["reference"]`` true."""
    return record.method == _REFERENCE_METHOD or record.params.get("reference") is True


def _ordered_keys(dicts: Iterable[dict[str, Any]], skip: frozenset[str] = frozenset()) -> list[str]:
    seen: dict[str, None] = {}
    for d in dicts:
        for k in d:
            # ``*_vs_full`` values are derived by the bench; the report shows its own Δ column
            if k not in skip and not k.endswith("_vs_full"):
                seen.setdefault(k, None)
    return list(seen)


def _make_row(key: tuple[str, float | None, str], recs: list[BenchRecord]) -> Row:
    method, compression, status = key
    row = Row(method, compression, status, recs)
    row.memory = stat(r.memory_bytes for r in recs)
    row.full_bytes = stat(r.params.get("full_bytes") for r in recs)
    if row.ok:
        for k in _ordered_keys((r.metrics for r in recs), frozenset({_ORACLE_KEY})):
            row.metrics[k] = stat(r.metrics.get(k) for r in recs)
        for k in _ordered_keys(r.timing for r in recs):
            row.timing[k] = stat(r.timing.get(k) for r in recs)
    return row


def _make_group(gkey: tuple[str, str, str | None], recs: list[BenchRecord]) -> Group:
    buckets: dict[tuple[str, float | None, str], list[BenchRecord]] = {}
    for r in recs:
        status = "ok" if r.status == "ok" else (r.status or "failed")
        buckets.setdefault((r.method, _number(r.compression), status), []).append(r)
    methods = list(dict.fromkeys(r.method for r in recs))
    rank = {m: (0 if m == _REFERENCE_METHOD else 1, i) for i, m in enumerate(methods)}
    keys = sorted(
        buckets,
        key=lambda k: (rank[k[0]], k[1] is not None, k[1] or 0.0, k[2] != "ok", k[2]),
    )
    rows = [_make_row(k, buckets[k]) for k in keys]
    ok = [r for r in recs if r.status == "ok"]
    metric_keys = _ordered_keys((r.metrics for r in ok), frozenset({_ORACLE_KEY}))
    timing_keys = _ordered_keys(r.timing for r in ok)
    for first in ("samples_per_s", "train_s"):
        if first in timing_keys:
            timing_keys.remove(first)
            timing_keys.insert(0, first)
    primary = primary_metric(gkey[0], metric_keys)
    refs = [row for row in rows if row.ok and any(is_reference(r) for r in row.records)]
    refs.sort(key=lambda row: row.method != _REFERENCE_METHOD)
    oracle = stat(v for r in recs for v in (r.params.get(_ORACLE_KEY), r.metrics.get(_ORACLE_KEY)))
    group = Group(
        suite=gkey[0],
        dataset=gkey[1],
        model=gkey[2],
        rows=rows,
        metric_keys=metric_keys,
        timing_keys=timing_keys,
        primary=primary,
        maximize=primary not in _LOWER_IS_BETTER,
        reference=refs[0] if refs else None,
        oracle=None if oracle is None else oracle.mean,
    )
    _mark_frontier(group)
    return group


def _mark_frontier(group: Group) -> None:
    if group.primary is None:
        return
    cand: list[tuple[Row, float, float]] = []
    for row in group.rows:
        s = row.metrics.get(group.primary)
        if row.ok and s is not None and row.memory is not None and row.memory.mean > 0:
            cand.append((row, row.memory.mean, s.mean))
    idx = pareto_frontier([c[1] for c in cand], [c[2] for c in cand], maximize=group.maximize)
    for i in idx:
        cand[i][0].on_frontier = True


def group_records(records: Sequence[BenchRecord]) -> list[Group]:
    """Group by (suite, dataset, model), sorted; rows: reference first, then by compression."""
    by_key: dict[tuple[str, str, str | None], list[BenchRecord]] = {}
    for r in records:
        by_key.setdefault((r.suite, r.dataset, r.model), []).append(r)
    keys = sorted(by_key, key=lambda k: (k[0], k[1], k[2] or ""))
    return [_make_group(k, by_key[k]) for k in keys]
