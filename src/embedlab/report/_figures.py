"""A group's figures: the Pareto plot, recall against QPS (retrieval) and the training
curves (records with ``params.history``), each as inline SVG with a caption.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from html import escape

from embedlab.report._format import fmt_metric, fmt_number, fmt_ratio
from embedlab.report._numeric import format_bytes
from embedlab.report._plot_history import Curve, history_plot_svg
from embedlab.report._plot_lines import Point, RefLine, Series, line_plot_svg
from embedlab.report._summary import Group, Row

__all__ = ["figures_html", "qps_key"]

Styles = Mapping[str, tuple[str, str]]
_QPS_KEYS = ("qps_1thread", "qps", "qps_all_threads")


def qps_key(group: Group) -> str | None:
    """The timing key the QPS plot uses: single-thread QPS first, else any ``qps*``."""
    for key in _QPS_KEYS:
        if key in group.timing_keys:
            return key
    return next((k for k in group.timing_keys if k.startswith("qps")), None)


def _tooltip(group: Group, row: Row) -> str:
    mem = row.memory
    lines = [row.method]
    if row.compression is not None:
        lines.append(f"compression {fmt_ratio(row.compression)} (target)")
    reached = group.reached(row)
    if reached is not None:
        lines.append(f"reached {fmt_ratio(reached)}")
    if mem is not None:
        lines.append(f"memory {format_bytes(mem.mean)} ({mem.mean:,.0f} B)")
    lines.extend(f"{k} {fmt_metric(s)}" for k, s in row.metrics.items())
    key = qps_key(group)
    qps = row.timing.get(key) if key else None
    if qps is not None:
        lines.append(f"{key} {fmt_number(qps.mean)}")
    lines.append("seeds " + ", ".join(str(s) for s in row.seeds))
    return "\n".join(lines)


def _style(styles: Styles, method: str) -> tuple[str, str]:
    return styles.get(method, ("#444444", "circle"))


def _series(group: Group, styles: Styles, y_of: str, x_of: str | None) -> list[Series]:
    """One series per method: y = metric ``y_of``, x = memory or timing ``x_of``."""
    by_method: dict[str, list[Point]] = {}
    for row in group.rows:
        s = row.metrics.get(y_of)
        x = row.memory if x_of is None else row.timing.get(x_of)
        if not row.ok or s is None or x is None:
            continue
        by_method.setdefault(row.method, []).append(
            Point(x.mean, s.mean, s.lo, s.hi, _tooltip(group, row))
        )
    return [Series(m, pts, *_style(styles, m)) for m, pts in by_method.items()]


def pareto_svg(group: Group, styles: Styles, *, id_prefix: str) -> str:
    """Memory (log) against the primary metric, one line per method, frontier and refs."""
    primary = group.primary or "metric"
    series = _series(group, styles, primary, None) if group.primary else []
    refs: list[RefLine] = []
    ref_y = group.ref_value(primary) if group.primary else None
    if ref_y is not None and group.reference is not None:
        refs.append(RefLine(f"{group.reference.method} (reference)", ref_y, "#333333"))
    if group.oracle is not None and primary == "auc":
        refs.append(RefLine("oracle", group.oracle, "#AA3377"))
    per_vector = group.suite == "retrieval"
    x_label = "RAM bytes per vector (log scale)" if per_vector else "memory (bytes, log scale)"
    return line_plot_svg(
        series,
        x_label=x_label,
        y_label=primary,
        refs=refs,
        maximize=group.maximize,
        title=f"{group.name}: {primary} against memory",
        id_prefix=id_prefix,
    )


def qps_svg(group: Group, styles: Styles, *, id_prefix: str) -> str:
    """Retrieval: recall (x) against queries per second (log y); up and right is better."""
    key, primary = qps_key(group), group.primary
    if key is None or primary is None:
        return ""
    swapped = [
        Series(s.name, [Point(p.y, p.x, tooltip=p.tooltip) for p in s.points], s.color, s.marker)
        for s in _series(group, styles, primary, key)
    ]
    return line_plot_svg(
        swapped,
        x_label=primary,
        y_label=f"{key.replace('_', ' ')} (queries/s, log scale)",
        maximize=True,
        x_lower_better=False,
        x_scale="linear",
        y_scale="log",
        x_format=None,
        y_format=fmt_number,
        title=f"{group.name}: {primary} against {key}",
        id_prefix=id_prefix,
        size=(960, 380),
    )


def _mean_at(histories: list[list[dict[str, object]]], key: str, n: int) -> list[float]:
    out = []
    for i in range(n):
        vals = [
            float(v)
            for h in histories
            if i < len(h)
            and isinstance(v := h[i].get(key), (int, float))
            and not isinstance(v, bool)
        ]
        vals = [v for v in vals if math.isfinite(v)]
        out.append(statistics.fmean(vals) if vals else math.nan)
    return out


def history_svg(group: Group, styles: Styles, *, id_prefix: str) -> str:
    """Train loss and valid AUC per epoch, one line per row (mean over its seeds)."""
    curves = []
    for row in group.rows:
        hists = [h for r in row.records if isinstance(h := r.params.get("history"), list) and h]
        if not row.ok or not hists:
            continue
        hists = [[e for e in h if isinstance(e, dict)] for h in hists]
        n = max(len(h) for h in hists)
        name = (
            row.method
            if row.compression is None
            else f"{row.method} @ {fmt_ratio(row.compression)}"
        )
        color, marker = _style(styles, row.method)
        seeds = ", ".join(str(s) for s in row.seeds)
        curves.append(
            Curve(
                name,
                [float(i + 1) for i in range(n)],
                _mean_at(hists, "train_loss", n),
                _mean_at(hists, "valid_auc", n),
                color,
                marker,
                f"{name}\nseeds {seeds}\nepochs {n}",
            )
        )
    if not curves:
        return ""
    return history_plot_svg(curves, title=f"{group.name}: training curves", id_prefix=id_prefix)


def figures_html(i: int, group: Group, styles: Styles) -> str:
    """Every figure of group ``i`` in ``<figure>`` elements with captions."""
    primary = group.primary or "metric"
    memory = "RAM bytes per vector" if group.suite == "retrieval" else "memory"
    parts = [(f"{primary} against {memory}", pareto_svg(group, styles, id_prefix=f"g{i}p"))]
    if group.suite == "retrieval":
        parts.append(
            (f"{primary} against queries per second", qps_svg(group, styles, id_prefix=f"g{i}q"))
        )
    parts.append(
        (
            "training curves, mean over seeds (epochs of all phases in order)",
            history_svg(group, styles, id_prefix=f"g{i}h"),
        )
    )
    return "".join(
        f'<figure class="figure"><figcaption>{escape(cap)}</figcaption>{svg}</figure>'
        for cap, svg in parts
        if svg
    )
