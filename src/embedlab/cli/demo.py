"""``embedlab demo``: the main job — quick suites on embedded data, then a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from embedlab.cli._common import check_out_dir, console, describe_error, fail, print_summary
from embedlab.cli._flags import Quiet, Threads, apply_threads


def demo(
    out: Annotated[Path, typer.Option("-o", "--out", help="output folder")] = Path("demo-report"),
    quiet: Quiet = False,
    threads: Threads = None,
) -> None:
    """Run the quick suites on embedded data and write OUT/index.html.

    CTR: every compression method on a synthetic click log (DeepFM, 10x and 100x).
    Metric: a few losses on scikit-learn's bundled digits, unseen-class retrieval.

    Example: embedlab demo -o demo-report/
    """
    apply_threads(threads)
    from embedlab.bench import write_records
    from embedlab.bench.metric import run_metric_demo
    from embedlab.cli.metric import print_metric_summary
    from embedlab.demo import run_demo
    from embedlab.report import render_report

    try:
        check_out_dir("--out", out)
        out.mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as exc:
        raise fail(describe_error(exc)) from None
    console.print("[bold]embedlab demo[/] 1/2: every compression method on a synthetic click log")
    records = run_demo(progress=not quiet)
    write_records(out / "ctr.jsonl", records)
    print_summary("ctr · synthetic · deepfm · dim 16", records)

    console.print("[bold]embedlab demo[/] 2/2: metric-learning losses on digits (unseen classes)")
    metric_records = run_metric_demo(progress=not quiet)
    write_records(out / "metric.jsonl", metric_records)
    print_metric_summary("metric · digits · mlp · dim 32", metric_records)

    path = render_report([*records, *metric_records], out, title="embedlab demo")
    console.print(f"records: {out / 'ctr.jsonl'}, {out / 'metric.jsonl'}\nreport:  {path}")
