"""The report page: header, one section per group (Pareto plot + table), inline CSS.

The markup is well-formed XML (every tag closed, only numeric character references),
so it parses with ``xml.etree`` as well as with HTML parsers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from embedlab.report._numeric import format_bytes
from embedlab.report._summary import Group, Row, Stat
from embedlab.report._svg import MARKERS, PALETTE, Point, RefLine, Series
from embedlab.report._svg import line_plot_svg as _line_plot_svg

__all__ = [
    "DASH",
    "fmt_metric",
    "fmt_number",
    "method_styles",
    "page_html",
    "plot_svg",
    "table_html",
]

DASH = "—"
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;
margin:0;background:#f6f7f9;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:0 0 4px}
.meta{color:#555;font-size:14px;margin:0 0 10px}
.howto{background:#fff;border-left:4px solid #0072B2;padding:8px 14px;font-size:14px;
margin:12px 0 20px;color:#333}
nav ul{margin:4px 0 16px;padding-left:20px;font-size:14px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:18px 20px;
margin:0 0 22px}
.figure{overflow-x:auto;margin:8px 0 10px}
.figure svg{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:12.5px}
.tablewrap{overflow-x:auto}
th,td{padding:4px 6px;border-bottom:1px solid #e6e6e6;white-space:nowrap}
th{background:#f0f2f5;text-align:left;font-weight:600;border-bottom:2px solid #ccc;
white-space:normal;vertical-align:bottom;min-width:3em}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafbfc}
tr.ref td{background:#eef5fb}
tr.infeasible td{color:#8a1c1c;background:#fdf3f3}
td.error{white-space:normal;font-style:italic}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.tag{font-size:11px;border-radius:3px;padding:0 4px;margin-left:6px;background:#e8e8e8;
color:#444}
.tag.front{background:#dff0e6;color:#11603a}
.pm{color:#777}
footer{color:#777;font-size:12px;margin-top:20px}
"""
_HOWTO = (
    "Each plot shows a group's primary metric against memory on a log scale: up and to the "
    "left is better. Markers are the mean over seeds and bars span min–max; the grey step "
    "line rings the Pareto frontier (runs no other run beats on both memory and metric); "
    "dashed lines mark the uncompressed “full” reference and, where the data is synthetic, "
    "the oracle AUC. Hover a marker for its numbers. Tables give mean ± std over seeds."
)
_TIMING_NAMES = {"train_s": "train (s)", "samples_per_s": "samples/s"}


def fmt_number(v: float) -> str:
    """Compact human format: thousands separators from 1000 up, 3 significant digits below."""
    if not math.isfinite(v):
        return DASH
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def fmt_metric(s: Stat | None, *, digits: int = 4) -> str:
    """``0.7812`` or ``0.7812 ± 0.0021`` when several seeds; a dash when missing."""
    if s is None:
        return DASH
    if s.std is None:
        return f"{s.mean:.{digits}f}"
    return f"{s.mean:.{digits}f} ± {s.std:.{digits}f}"


def _fmt_timing(s: Stat | None) -> str:
    if s is None:
        return DASH
    if s.std is None:
        return fmt_number(s.mean)
    return f"{fmt_number(s.mean)} ± {fmt_number(s.std)}"


def _fmt_ratio(c: float | None) -> str:
    return DASH if c is None or not math.isfinite(c) else f"{fmt_number(c)}×"


def method_styles(methods: Sequence[str]) -> dict[str, tuple[str, str]]:
    """A (colour, marker) per method, stable across the page; colours cycle, markers shift."""
    n = len(PALETTE)
    return {
        m: (PALETTE[i % n], MARKERS[(i + i // n) % len(MARKERS)]) for i, m in enumerate(methods)
    }


def _tooltip(group: Group, row: Row) -> str:
    mem = row.memory
    lines = [row.method]
    if row.compression is not None:
        lines.append(f"compression {_fmt_ratio(row.compression)} (target)")
    reached = group.reached(row)
    if reached is not None:
        lines.append(f"reached {_fmt_ratio(reached)}")
    if mem is not None:
        lines.append(f"memory {format_bytes(mem.mean)} ({mem.mean:,.0f} B)")
    lines.extend(f"{k} {fmt_metric(s)}" for k, s in row.metrics.items())
    lines.append("seeds " + ", ".join(str(s) for s in row.seeds))
    return "\n".join(lines)


def plot_svg(group: Group, styles: Mapping[str, tuple[str, str]]) -> str:
    """The group's Pareto plot: memory (log) against the primary metric, one line per method."""
    primary = group.primary
    by_method: dict[str, list[Point]] = {}
    for row in group.rows:
        s = row.metrics.get(primary) if primary else None
        if not row.ok or s is None or row.memory is None:
            continue
        pt = Point(row.memory.mean, s.mean, s.lo, s.hi, _tooltip(group, row))
        by_method.setdefault(row.method, []).append(pt)
    series = [
        Series(m, pts, styles.get(m, ("#444444", "circle"))[0], styles.get(m, ("", "circle"))[1])
        for m, pts in by_method.items()
    ]
    refs: list[RefLine] = []
    if primary is not None:
        ref_y = group.ref_value(primary)
        if ref_y is not None and group.reference is not None:
            refs.append(RefLine(f"{group.reference.method} (reference)", ref_y, "#333333"))
        if group.oracle is not None and primary == "auc":
            refs.append(RefLine("oracle", group.oracle, "#AA3377"))
    return _line_plot_svg(
        series,
        x_label="memory (bytes, log scale)",
        y_label=primary or "metric",
        refs=refs,
        maximize=group.maximize,
        title=f"{group.name}: {primary or 'metric'} against memory",
    )


def _td(text: str, cls: str = "", colspan: int = 1, title: str = "") -> str:
    attrs = f' class="{cls}"' if cls else ""
    attrs += f' colspan="{colspan}"' if colspan > 1 else ""
    attrs += f' title="{escape(title)}"' if title else ""
    return f"<td{attrs}>{escape(text)}</td>"


def _delta(group: Group, row: Row) -> str:
    ref = group.ref_value(group.primary) if group.primary else None
    s = row.metrics.get(group.primary) if group.primary else None
    if ref is None or s is None:
        return DASH
    return f"{s.mean - ref:+.4f}"


def _speed_ratio(group: Group, row: Row) -> str:
    ref = group.ref_value("samples_per_s", timing=True)
    s = row.timing.get("samples_per_s")
    if ref is None or s is None or ref <= 0:
        return DASH
    return f"{s.mean / ref:.2f}×"


def table_html(group: Group, styles: Mapping[str, tuple[str, str]]) -> str:
    """One row per (method, compression, status); infeasible rows show their error."""
    show_delta = group.reference is not None and group.primary is not None
    show_speed = group.ref_value("samples_per_s", timing=True) is not None
    heads = ["method", "compression (target)", "reached", "memory"]
    heads += group.metric_keys
    if show_delta:
        heads.append(f"Δ {group.primary} vs {group.reference.method if group.reference else ''}")
    heads += [_TIMING_NAMES.get(k, k) for k in group.timing_keys]
    if show_speed:
        heads.append("samples/s vs full")
    heads += ["seeds", "status"]
    n_measured = len(heads) - 6  # metric, delta and timing columns
    out = ['<div class="tablewrap"><table><thead><tr>']
    text_cols = {0, len(heads) - 2, len(heads) - 1}  # method, seeds, status
    out.extend(
        f"<th>{escape(h)}</th>" if i in text_cols else f'<th class="num">{escape(h)}</th>'
        for i, h in enumerate(heads)
    )
    out.append("</tr></thead><tbody>")
    for row in group.rows:
        classes = []
        if row is group.reference:
            classes.append("ref")
        if not row.ok:
            classes.append("infeasible")
        cls = f' class="{" ".join(classes)}"' if classes else ""
        color = styles.get(row.method, ("#444444", ""))[0]
        tags = '<span class="tag">reference</span>' if row is group.reference else ""
        tags += '<span class="tag front">Pareto</span>' if row.on_frontier else ""
        cells = [
            f'<td><span class="swatch" style="background:{color}"></span>'
            f"{escape(row.method)}{tags}</td>",
            _td(_fmt_ratio(row.compression), "num"),
        ]
        reached = group.reached(row)
        cells.append(_td(_fmt_ratio(reached), "num"))
        mem = row.memory
        mem_text = DASH if mem is None else f"{format_bytes(mem.mean)} ({mem.mean:,.0f} B)"
        cells.append(_td(mem_text, "num"))
        if row.ok:
            cells.extend(_td(fmt_metric(row.metrics.get(k)), "num") for k in group.metric_keys)
            if show_delta:
                cells.append(_td(_delta(group, row), "num"))
            cells.extend(_td(_fmt_timing(row.timing.get(k)), "num") for k in group.timing_keys)
            if show_speed:
                cells.append(_td(_speed_ratio(group, row), "num"))
        elif n_measured > 0:
            msg = "; ".join(row.errors)
            cells.append(_td(msg, "error", colspan=n_measured, title=msg))
        cells.append(_td(", ".join(str(s) for s in row.seeds)))
        cells.append(_td(row.status))
        out.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _section(i: int, group: Group, styles: Mapping[str, tuple[str, str]]) -> str:
    n_runs = sum(len(r.records) for r in group.rows)
    facts = [f"{n_runs} run{'s' if n_runs != 1 else ''}"]
    if group.primary:
        facts.append(f"primary metric: {group.primary}")
    ref = group.reference
    if ref is not None and ref.memory is not None:
        facts.append(f"{ref.method}: {format_bytes(ref.memory.mean)}")
    if group.oracle is not None:
        facts.append(f"oracle AUC: {group.oracle:.4f}")
    return (
        f'<section id="group-{i}"><h2>{escape(group.name)}</h2>'
        f'<p class="meta">{escape(" · ".join(facts))}</p>'
        f'<div class="figure">{plot_svg(group, styles)}</div>'
        f"{table_html(group, styles)}</section>"
    )


def page_html(
    groups: Sequence[Group],
    *,
    title: str,
    generated: str,
    versions: Sequence[str],
    n_ok: int,
    n_other: int,
    styles: Mapping[str, tuple[str, str]],
) -> str:
    """The whole self-contained page (no scripts, no external resources)."""
    runs = f"{n_ok + n_other} runs ({n_ok} ok, {n_other} infeasible or failed)"
    meta = [f"generated {generated}", "embedlab " + (", ".join(versions) or "version unknown")]
    meta += [runs, f"{len(groups)} group{'s' if len(groups) != 1 else ''}"]
    nav = ""
    if len(groups) > 1:
        items = "".join(
            f'<li><a href="#group-{i}">{escape(g.name)}</a></li>' for i, g in enumerate(groups)
        )
        nav = f"<nav><ul>{items}</ul></nav>"
    sections = "".join(_section(i, g, styles) for i, g in enumerate(groups))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>"
        f'<h1>{escape(title)}</h1><p class="meta">{escape(" · ".join(meta))}</p>'
        f'<p class="howto">{escape(_HOWTO)}</p>{nav}{sections}'
        "<footer>Rendered by embedlab.report — self-contained: no scripts, fonts or "
        "network resources.</footer></main></body></html>\n"
    )
