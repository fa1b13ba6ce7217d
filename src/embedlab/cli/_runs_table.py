"""The per-run summary table the small suites print (cluster, gcd, disentangle)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from embedlab.bench import BenchRecord
from embedlab.cli._common import console

__all__ = ["print_runs_table"]


def print_runs_table(
    title: str,
    records: Sequence[BenchRecord],
    metrics: Sequence[tuple[str, str]],
    timing: tuple[str, str],
) -> None:
    """One row per record: method, seed, each ``(metric key, header)``, one timing, status;
    then the error of every run that is not ``ok``."""
    table = Table(title=title, title_justify="left")
    time_key, time_header = timing
    for col in ("method", "seed", *(h for _, h in metrics), time_header, "status"):
        table.add_column(col, justify="left" if col in ("method", "status") else "right")
    for r in records:
        cells = [r.method, str(r.seed)]
        cells += [f"{r.metrics[k]:.4f}" if k in r.metrics else "-" for k, _ in metrics]
        seconds = r.timing.get(time_key)
        cells += ["-" if seconds is None else f"{seconds:.1f}", r.status]
        table.add_row(*cells)
    console.print(table)
    for r in records:
        if r.status != "ok":
            console.print(f"  [dim]{r.method}: {r.error}[/]", highlight=False)
