"""``embedlab report``: render records into an HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from embedlab.bench import read_records
from embedlab.cli._common import check_in_file, check_out_dir, console, describe_error, fail


def report(
    results: Annotated[
        Path, typer.Argument(help="a .jsonl file written by `embedlab bench ... --json`")
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="output folder for index.html")] = Path(
        "report"
    ),
) -> None:
    """Render RESULTS into OUT/index.html: Pareto plots (metric vs bytes) and tables."""
    from embedlab.report import render_report

    try:
        check_out_dir("--out", out)
        check_in_file("RESULTS", results)
        records = read_records(results)
    except (ValueError, OSError) as exc:
        raise fail(describe_error(exc)) from None
    path = render_report(records, out)
    console.print(f"report written to {path}")
