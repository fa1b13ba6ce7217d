"""Rows of the printed summary table, shared by the CLI and tests."""

from __future__ import annotations

from collections.abc import Sequence

from embedlab.bench._record import BenchRecord

__all__ = ["SUMMARY_COLUMNS", "format_bytes", "summary_notes", "summary_rows"]

SUMMARY_COLUMNS = (
    "method",
    "compression",
    "reached",
    "memory",
    "auc",
    "logloss",
    "Δauc",
    "samples/s",
    "×full",
    "status",
)


def format_bytes(n: float | None) -> str:
    """``1536`` -> ``"1.5 KB"`` (powers of 1024)."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def summary_rows(records: Sequence[BenchRecord]) -> list[tuple[str, ...]]:
    """One row of strings per record, in :data:`SUMMARY_COLUMNS` order."""
    rows: list[tuple[str, ...]] = []
    for r in records:
        reached = r.params.get("compression_reached")
        if r.status != "ok":
            rows.append((r.method, _fmt(r.compression, "g"), *("-",) * 7, r.status))
            continue
        rows.append(
            (
                r.method,
                _fmt(r.compression, "g"),
                _fmt(reached, ".1f"),
                format_bytes(r.memory_bytes),
                _fmt(r.metrics.get("auc"), ".4f"),
                _fmt(r.metrics.get("logloss"), ".4f"),
                _fmt(r.metrics.get("auc_delta_vs_full"), "+.4f"),
                _fmt(r.timing.get("samples_per_s"), ",.0f"),
                _fmt(r.timing.get("samples_per_s_vs_full"), ".2f"),
                r.status,
            )
        )
    return rows


def summary_notes(records: Sequence[BenchRecord]) -> list[str]:
    """One line per run that did not finish: why (e.g. the budget a method cannot reach)."""
    return [
        f"{r.method} @ {_fmt(r.compression, 'g')}x: {r.error or r.status}"
        for r in records
        if r.status != "ok"
    ]
