"""The retrieval suite's grid: build and measure each index spec (see
:mod:`embedlab.bench.retrieval` for the protocol and the metrics)."""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from embedlab import __version__
from embedlab.bench import retrieval as _r  # the metrics; this module is imported by it
from embedlab.bench._grid import Grid, GridRun, LocalEngine, run_grid
from embedlab.bench._record import BenchRecord, config_hash
from embedlab.bench._threads import limit_threads

if TYPE_CHECKING:
    from embedlab.bench._ray_grid import RayEngine
    from embedlab.bench.retrieval import IndexFactory, RetrievalBenchConfig
    from embedlab.data.retrieval import RetrievalData

__all__ = ["run_retrieval_bench"]


def _default_factory() -> IndexFactory:
    try:
        module = importlib.import_module("embedlab.index.factory")
    except ImportError as exc:
        message = f"embedlab.index is not available ({exc})"

        def missing(dim: int, spec: str, *, metric: str = "cos") -> Any:
            raise RuntimeError(message)

        return missing
    factory: IndexFactory = module.index_factory
    return factory


def run_retrieval_bench(
    data: RetrievalData,
    config: RetrievalBenchConfig,
    *,
    on_record: Callable[[BenchRecord], None] | None = None,
    factory: IndexFactory | None = None,
    recorded: Iterable[BenchRecord] = (),
    engine: LocalEngine | RayEngine | None = None,
) -> list[BenchRecord]:
    """Build and measure every method of ``config`` on ``data``.

    Args:
        data: corpus, queries, qrels and held-out queries.
        config: methods, ``k`` and metric.
        on_record: called with each record as soon as it is measured.
        factory: ``factory(dim, spec, metric=...) -> index`` (default
            ``embedlab.index.factory.index_factory``).
        recorded: records of earlier runs; methods among them (same dataset, seed and
            config hash) are skipped.
        engine: ``None`` builds in this process; a :class:`~embedlab.bench.RayEngine`
            measures each method as a Ray task (QPS then uses the task's threads).

    Returns:
        One :class:`BenchRecord` per method (suite ``"retrieval"``), in ``config.methods``
        order.
    """
    make = factory if factory is not None else _default_factory()
    exact_q = data.exact_queries
    if exact_q.shape[0] == 0:
        raise ValueError(f"{data.name}: no queries to measure (no real or held-out queries)")
    _, truth = _r.exact_search(data.corpus, exact_q, config.k, metric=config.metric)
    flat_ndcg: float | None = None
    if bool(data.qrels) and data.queries.shape[0] > 0:
        assert data.qrels is not None
        _, exact_rows = _r.exact_search(
            data.corpus, data.queries, _r._QRELS_K, metric=config.metric
        )
        flat_ndcg = _r.ndcg_at_k(
            _r._to_doc_ids(exact_rows, data.corpus_ids), data.query_ids, data.qrels
        )
    setup = _Setup(data, config, make, truth, flat_ndcg)
    settings = {
        "k": config.k,
        "metric": config.metric,
        "model": data.model,
        "n_corpus": data.n_corpus,
        "dim": data.dim,
        "n_queries": int(data.queries.shape[0]),
        "n_exact_queries": int(exact_q.shape[0]),
        "qrels": flat_ndcg is not None,
    }
    grid = Grid(
        suite="retrieval",
        dataset=data.name,
        config_hash=config_hash(settings),
        runs=[GridRun(spec, config.seed) for spec in config.methods],
        task=_retrieval_task,
        data=lambda seed: setup,
    )
    return run_grid(
        grid,
        recorded=recorded,
        engine=engine,
        on_record=on_record,
        progress="retrieval" if config.progress else None,
    )


@dataclass(frozen=True)
class _Setup:
    """What every method of a retrieval grid shares: data, settings and the exact answers."""

    data: RetrievalData
    config: RetrievalBenchConfig
    make: IndexFactory
    truth: np.ndarray
    flat_ndcg: float | None


def _retrieval_task(setup: _Setup, run: GridRun) -> BenchRecord:
    """One grid run: build and measure one spec (module-level: Ray sends it by name)."""
    record = BenchRecord(
        suite="retrieval",
        dataset=setup.data.name,
        method=run.method,
        model=setup.data.model,
        seed=setup.config.seed,
        embedlab_version=__version__,
    )
    try:
        _measure(record, setup, run.method)
    except Exception as exc:  # one broken method must not stop the suite
        record.status = "failed"
        record.error = f"{type(exc).__name__}: {exc}"
        record.metrics, record.timing, record.memory_bytes = {}, {}, None
    return record


def _make_index(make: IndexFactory, dim: int, spec: str, config: RetrievalBenchConfig) -> Any:
    """``make(dim, spec, metric=..., seed=...)``; without ``seed`` when no stage takes one.

    ``BiDR{m}`` specs (a trainer, not an index token) bypass ``make``."""
    from embedlab.bench._bidr_method import is_bidr_spec, make_bidr_method

    if is_bidr_spec(spec):
        return make_bidr_method(dim, spec, metric=config.metric, seed=config.seed)
    try:
        return make(dim, spec, metric=config.metric, seed=config.seed)
    except (TypeError, ValueError) as exc:
        if "seed" not in str(exc):
            raise
    return make(dim, spec, metric=config.metric)


def _timed_search(index: Any, q: np.ndarray, k: int, repeats: int) -> tuple[np.ndarray, float]:
    """Ids of one batched search and the best wall time (seconds) over ``repeats`` runs."""
    best = math.inf
    ids = np.empty((0, k), dtype=np.int64)
    for _ in range(repeats):
        t0 = time.perf_counter()
        ids = _search(index, q, k)
        best = min(best, time.perf_counter() - t0)
    return ids, max(best, 1e-9)


def _search(index: Any, q: np.ndarray, k: int) -> np.ndarray:
    _, ids = index.search(q, k)
    ids = np.asarray(ids.numpy() if isinstance(ids, torch.Tensor) else ids)
    if ids.shape != (q.shape[0], k):
        raise ValueError(f"search returned ids of shape {ids.shape}, expected {(q.shape[0], k)}")
    return ids.astype(np.int64, copy=False)


def _measure(record: BenchRecord, setup: _Setup, spec: str) -> None:
    data, config, make = setup.data, setup.config, setup.make
    truth, flat_ndcg = setup.truth, setup.flat_ndcg
    n, d, k = data.n_corpus, data.dim, config.k
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)  # for indexes that draw from numpy's global state
    t0 = time.perf_counter()
    index = _make_index(make, d, spec, config)
    index.train(data.corpus)
    train_s = time.perf_counter() - t0
    index.add(data.corpus)
    build_s = time.perf_counter() - t0

    exact_q = data.exact_queries
    _search(index, exact_q[:1], k)  # warm-up (lazy allocations, first-call overheads)
    found, best_all = _timed_search(index, exact_q, k, config.repeats)
    n_lat = min(config.latency_queries, exact_q.shape[0])
    lat = np.empty(n_lat)
    with limit_threads(1):
        _, best_1 = _timed_search(index, exact_q, k, config.repeats)
        for i in range(n_lat):
            t0 = time.perf_counter()
            _search(index, exact_q[i : i + 1], k)
            lat[i] = time.perf_counter() - t0
    qps_all = exact_q.shape[0] / best_all
    qps_1 = exact_q.shape[0] / best_1

    metrics: dict[str, float] = {f"recall@{k}": _r.recall_at_k(found, truth, k)}
    if flat_ndcg is not None and data.qrels:
        rows = _search(index, data.queries, max(_r._QRELS_K, _r._NDCG_K))
        ranked = _r._to_doc_ids(rows, data.corpus_ids)
        ndcg = _r.ndcg_at_k(ranked, data.query_ids, data.qrels)
        metrics["ndcg@10"] = ndcg
        metrics["ndcg@10_vs_flat"] = ndcg / flat_ndcg if flat_ndcg > 0 else float("nan")
        metrics["recall@100"] = _r.qrels_recall_at_k(ranked, data.query_ids, data.qrels)

    ram_total = int(index.memory_bytes())
    disk_fn = getattr(index, "disk_bytes", None)
    disk_total = int(disk_fn()) if callable(disk_fn) else 0
    float_bytes = 4 * d
    record.memory_bytes = round(ram_total / n)
    record.compression = float_bytes / (ram_total / n) if ram_total > 0 else None
    record.metrics = metrics
    record.timing = {
        "build_s": build_s,
        "train_s": train_s,
        "qps_1thread": qps_1,
        "qps_all_threads": qps_all,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
    }
    record.params = {
        "spec": spec,
        "dim": d,
        "k": k,
        "metric": config.metric,
        "n_corpus": n,
        "n_queries": int(data.queries.shape[0]),
        "n_exact_queries": int(exact_q.shape[0]),
        "exact_queries": "holdout" if data.holdout is not None and len(data.holdout) else "queries",
        "n_latency_queries": n_lat,
        "timing_repeats": config.repeats,
        "ram_bytes_total": ram_total,
        "ram_bytes_per_vector": ram_total / n,
        "disk_bytes_total": disk_total,
        "disk_bytes_per_vector": disk_total / n,
        "float32_bytes_per_vector": float_bytes,
        "threads_all": torch.get_num_threads(),
    }
    if flat_ndcg is not None:
        record.params["ndcg@10_flat"] = flat_ndcg
