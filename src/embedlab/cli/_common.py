"""Console output and list-option parsing shared by the CLI command groups."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from embedlab._registry import split_specs
from embedlab.bench import (
    SUMMARY_COLUMNS,
    BenchRecord,
    summary_notes,
    summary_rows,
    write_records,
)

# Wide enough for the summary table when the output is a file or a pipe (rich's default is 80).
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise (code 2)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def parse_floats(option: str, text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{option} must be comma-separated numbers, got {text!r}") from None


def parse_ints(option: str, text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{option} must be comma-separated integers, got {text!r}") from None


def parse_specs(text: str) -> list[str]:
    return split_specs(text)


def print_summary(title: str, records: Sequence[BenchRecord]) -> None:
    table = Table(title=title, title_justify="left")
    for col in SUMMARY_COLUMNS:
        table.add_column(col, justify="left" if col in ("method", "status") else "right")
    for row in summary_rows(records):
        table.add_row(*row)
    console.print(table)
    for note in summary_notes(records):
        console.print(f"  [dim]{note}[/]", highlight=False)


def record_saver(
    json_out: Path | None, *, quiet: bool, line: Callable[[BenchRecord], str]
) -> Callable[[BenchRecord], None]:
    """The ``on_record`` callback of a suite: rewrite ``json_out`` (atomically) with every
    record so far, so an interrupted run keeps what it measured, and print ``line(record)``."""
    done: list[BenchRecord] = []

    def save(record: BenchRecord) -> None:
        done.append(record)
        if json_out is not None:
            write_records(json_out, done)
        if not quiet:
            console.print(f"  {line(record)}", highlight=False)

    return save
