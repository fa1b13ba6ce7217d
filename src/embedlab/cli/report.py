"""``embedlab report``: render records into an HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from embedlab.bench._records_io import expand_paths, read_records
from embedlab.cli._common import check_in_file, check_out_dir, console, describe_error, fail


def report(
    results: Annotated[
        list[str],
        typer.Argument(
            help="records files written by `embedlab bench ... --json`, or glob patterns "
            "('runs/*.jsonl'); their records are merged"
        ),
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="output folder for index.html")] = Path(
        "report"
    ),
) -> None:
    """Render RESULTS into OUT/index.html: Pareto plots (metric vs bytes) and tables.

    Example: embedlab report ctr.jsonl 'retrieval-*.jsonl' -o report/
    """
    from embedlab.report import render_report

    try:
        check_out_dir("--out", out)
        records = []
        for path in expand_paths(results):
            check_in_file("RESULTS", path)
            records.extend(read_records(path))
    except (ValueError, OSError) as exc:
        raise fail(describe_error(exc)) from None
    path = render_report(records, out)
    console.print(f"report written to {path}")
