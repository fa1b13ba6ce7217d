"""Benchmark suites: grids of (dataset x method x budget) written as JSON-lines records.

Every suite runs its grid through one runner, in this process or as Ray tasks
(:class:`LocalEngine`, :class:`RayEngine`), and skips runs already recorded
(``recorded=``). Records files are append-only, with a header line per invocation
(:class:`RecordWriter`); :func:`load_records` reads any number of them into a
DataFrame whose columns are documented in :data:`RECORD_KEYS`.
"""

from __future__ import annotations

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
from embedlab.bench.ctr import CTRBenchConfig, run_ctr_bench
from embedlab.bench.metric import run_metric_bench
from embedlab.bench.retrieval import RetrievalBenchConfig, run_retrieval_bench

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
    "run_ctr_bench",
    "run_grid",
    "run_metric_bench",
    "run_retrieval_bench",
    "summary_notes",
    "summary_rows",
    "undocumented_keys",
    "write_records",
]
