"""Benchmark suites: grids of (dataset x method x budget) written as JSON-lines records.

Every suite runs its grid through one runner, in this process or as Ray tasks
(:class:`LocalEngine`, :class:`RayEngine`), and skips runs already recorded
(``recorded=``). Records files are append-only, with a header line per invocation
(:class:`RecordWriter`); :func:`load_records` reads any number of them into a
DataFrame whose columns are documented in :data:`RECORD_KEYS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedlab._lazy import lazy_exports

if TYPE_CHECKING:
    from embedlab.bench._grid import Collector, Grid, GridRun, LocalEngine, run_grid
    from embedlab.bench._ray_grid import RayEngine
    from embedlab.bench._record import BenchRecord, config_hash
    from embedlab.bench._records_io import (
        RecordWriter,
        append_records,
        load_records,
        read_records,
        write_records,
    )
    from embedlab.bench._schema import RECORD_KEYS, KeyDoc, undocumented_keys
    from embedlab.bench._summary import SUMMARY_COLUMNS, format_bytes, summary_notes, summary_rows
    from embedlab.bench.cluster import run_cluster_bench
    from embedlab.bench.ctr import CTRBenchConfig, run_ctr_bench
    from embedlab.bench.gcd import run_gcd_bench
    from embedlab.bench.metric import run_metric_bench
    from embedlab.bench.retrieval import RetrievalBenchConfig, run_retrieval_bench

#: public name -> the module that defines it (loaded on first use: the CLI starts fast)
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        ["Collector", "Grid", "GridRun", "LocalEngine", "run_grid"], "embedlab.bench._grid"
    ),
    "RayEngine": "embedlab.bench._ray_grid",
    **dict.fromkeys(["BenchRecord", "config_hash"], "embedlab.bench._record"),
    **dict.fromkeys(
        ["RecordWriter", "append_records", "load_records", "read_records", "write_records"],
        "embedlab.bench._records_io",
    ),
    **dict.fromkeys(["RECORD_KEYS", "KeyDoc", "undocumented_keys"], "embedlab.bench._schema"),
    **dict.fromkeys(
        ["SUMMARY_COLUMNS", "format_bytes", "summary_notes", "summary_rows"],
        "embedlab.bench._summary",
    ),
    **dict.fromkeys(["CTRBenchConfig", "run_ctr_bench"], "embedlab.bench.ctr"),
    "run_cluster_bench": "embedlab.bench.cluster",
    "run_gcd_bench": "embedlab.bench.gcd",
    "run_metric_bench": "embedlab.bench.metric",
    **dict.fromkeys(["RetrievalBenchConfig", "run_retrieval_bench"], "embedlab.bench.retrieval"),
}

__all__ = [
    "RECORD_KEYS",
    "SUMMARY_COLUMNS",
    "BenchRecord",
    "CTRBenchConfig",
    "Collector",
    "Grid",
    "GridRun",
    "KeyDoc",
    "LocalEngine",
    "RayEngine",
    "RecordWriter",
    "RetrievalBenchConfig",
    "append_records",
    "config_hash",
    "format_bytes",
    "load_records",
    "read_records",
    "run_cluster_bench",
    "run_ctr_bench",
    "run_gcd_bench",
    "run_grid",
    "run_metric_bench",
    "run_retrieval_bench",
    "summary_notes",
    "summary_rows",
    "undocumented_keys",
    "write_records",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
