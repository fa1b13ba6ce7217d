"""``render_report``: records in, ``index.html`` + ``results.csv`` out, both written atomically."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from embedlab._io import atomic_write_text
from embedlab._validation import check_nonempty
from embedlab.report._html import method_styles, page_html
from embedlab.report._summary import Group, group_records, stat

if TYPE_CHECKING:
    from embedlab.bench import BenchRecord

__all__ = ["render_report", "results_csv"]


def render_report(
    records: Sequence[BenchRecord],
    out_dir: str | os.PathLike[str],
    *,
    title: str = "embedlab report",
) -> Path:
    """Write a self-contained HTML report of benchmark records; return the page's path.

    Records are grouped by (suite, dataset, model). Each group gets a Pareto plot
    (memory on a log axis against the suite's primary metric, one line per method,
    mean and min-max over seeds, the frontier highlighted, dashed reference lines for
    the ``full`` method and for an ``oracle_auc`` when the data knows it); retrieval
    groups also get recall against QPS, and runs with a ``params.history`` their train
    loss and validation AUC per epoch. The plots are drawn by matplotlib (Agg) and
    inlined as SVG. A table gives every metric and timing, mean ± std over seeds, in
    column groups under a sticky header. Infeasible runs appear in the table with their
    error. ``out_dir/results.csv`` gets one flat row per record.

    Args:
        records: benchmark records, e.g. from :func:`embedlab.bench.read_records`.
        out_dir: folder to write into; created if missing.
        title: page title.

    Example:
        >>> from embedlab.bench import BenchRecord
        >>> recs = [BenchRecord("ctr", "synthetic", "full", memory_bytes=4000,
        ...                     metrics={"auc": 0.8})]
        >>> render_report(recs, tmp_dir).name  # doctest: +SKIP
        'index.html'
    """
    records = list(records)
    check_nonempty("records", len(records))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    groups = group_records(records)
    methods = list(dict.fromkeys(r.method for r in records))
    versions = sorted({r.embedlab_version for r in records if r.embedlab_version})
    n_ok = sum(r.status == "ok" for r in records)
    html = page_html(
        groups,
        title=title,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        versions=versions,
        n_ok=n_ok,
        n_other=len(records) - n_ok,
        styles=method_styles(methods),
    )
    atomic_write_text(out / "results.csv", results_csv(groups))
    page = out / "index.html"
    atomic_write_text(page, html)
    return page


def results_csv(groups: Sequence[Group]) -> str:
    """One CSV row per record, with ``compression_reached`` and prefixed metric/timing columns."""
    metric_keys = list(dict.fromkeys(k for g in groups for k in g.metric_keys))
    timing_keys = list(dict.fromkeys(k for g in groups for k in g.timing_keys))
    head = ["suite", "dataset", "model", "method", "compression", "seed", "status"]
    head += ["memory_bytes", "compression_reached"]
    head += [f"metric:{k}" for k in metric_keys] + [f"timing:{k}" for k in timing_keys]
    head += ["embedlab_version", "error"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    for g in groups:
        for row in g.rows:
            for r in row.records:
                single = stat([r.memory_bytes])
                reached = None
                if single is not None and single.mean > 0:
                    fb = stat([r.params.get("full_bytes")])
                    ref_mem = g.reference.memory if g.reference else None
                    if fb is not None:
                        reached = fb.mean / single.mean
                    elif ref_mem is not None:
                        reached = ref_mem.mean / single.mean
                writer.writerow(
                    [r.suite, r.dataset, r.model or "", r.method, _cell(r.compression), r.seed]
                    + [r.status, _cell(r.memory_bytes), _cell(reached)]
                    + [_cell(r.metrics.get(k)) for k in metric_keys]
                    + [_cell(r.timing.get(k)) for k in timing_keys]
                    + [r.embedlab_version, r.error or ""]
                )
    return buf.getvalue()


def _cell(v: object) -> str:
    s = stat([v])
    if s is None:
        return ""
    return str(int(s.mean)) if s.mean.is_integer() else repr(s.mean)
