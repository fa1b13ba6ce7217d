"""``embedlab demo``: the main job — quick suites on embedded data, then a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from embedlab.cli._common import console, print_summary


def demo(
    out: Annotated[Path, typer.Option("-o", "--out", help="output folder")] = Path("demo-report"),
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
) -> None:
    """Run the quick CTR suite on synthetic data and write OUT/index.html."""
    from embedlab.bench import write_records
    from embedlab.demo import run_demo
    from embedlab.report import render_report

    console.print("[bold]embedlab demo[/]: every compression method on a synthetic click log")
    records = run_demo(progress=not quiet)
    out.mkdir(parents=True, exist_ok=True)
    write_records(out / "ctr.jsonl", records)
    print_summary("ctr · synthetic · deepfm · dim 16", records)
    path = render_report(records, out, title="embedlab demo")
    console.print(f"records: {out / 'ctr.jsonl'}\nreport:  {path}")
