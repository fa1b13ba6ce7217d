"""Benchmark suites: grids of (dataset x method x budget) written as JSON-lines records."""

from __future__ import annotations

from embedlab.bench._record import BenchRecord, append_records, read_records, write_records
from embedlab.bench._summary import SUMMARY_COLUMNS, format_bytes, summary_notes, summary_rows
from embedlab.bench.cluster import run_cluster_bench
from embedlab.bench.ctr import CTRBenchConfig, run_ctr_bench
from embedlab.bench.metric import run_metric_bench
from embedlab.bench.retrieval import RetrievalBenchConfig, run_retrieval_bench

__all__ = [
    "SUMMARY_COLUMNS",
    "BenchRecord",
    "CTRBenchConfig",
    "RetrievalBenchConfig",
    "append_records",
    "format_bytes",
    "read_records",
    "run_cluster_bench",
    "run_ctr_bench",
    "run_metric_bench",
    "run_retrieval_bench",
    "summary_notes",
    "summary_rows",
    "write_records",
]
