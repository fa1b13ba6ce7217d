"""The report page: header, one section per group (figures + table), inline CSS.

The markup is well-formed XML (every tag closed, only numeric character references),
so it parses with ``xml.etree`` as well as with HTML parsers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape

from embedlab.report._figures import figures_html
from embedlab.report._format import DASH, fmt_number, fmt_ratio
from embedlab.report._mpl import MARKERS, PALETTE
from embedlab.report._numeric import format_bytes
from embedlab.report._summary import Group, Row, Stat, stat

__all__ = ["method_styles", "page_html", "table_html"]

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;
margin:0;background:#f6f7f9;line-height:1.45}
main{max-width:1320px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:0 0 4px}
.meta{color:#555;font-size:14px;margin:0 0 10px}
.howto{background:#fff;border-left:4px solid #0072B2;padding:8px 14px;font-size:14px;
margin:12px 0 20px;color:#333}
nav ul{margin:4px 0 16px;padding-left:20px;font-size:14px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:18px 20px;
margin:0 0 22px;min-width:0}
.figure{margin:8px 0 14px}
.figure figcaption{font-size:13px;font-weight:600;color:#444;margin:0 0 2px}
.figure svg{display:block;max-width:100%;height:auto}
.noplot{color:#666;font-style:italic;background:#fafafa;border:1px solid #ddd;padding:18px;
text-align:center;margin:0}
.tablewrap{overflow:auto;max-height:75vh;max-width:100%;border:1px solid #e1e4e8;
border-radius:4px}
table{border-collapse:separate;border-spacing:0;font-size:12.5px;min-width:100%}
thead{position:sticky;top:0;z-index:2}
th,td{padding:4px 5px;border-bottom:1px solid #e6e6e6;white-space:nowrap;background:#fff}
th{background:#f0f2f5;color:#222;text-align:left;font-weight:600;font-size:12px;
vertical-align:bottom;white-space:normal;min-width:4em}
thead tr.cols th{border-bottom:2px solid #c8ccd2}
thead tr.groups th{text-align:left;text-transform:uppercase;letter-spacing:.04em;
font-size:11px;color:#555;border-bottom:1px solid #d6d9de}
th.gsep,td.gsep{border-left:1px solid #d6d9de}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.cols th:first-child,tbody td:first-child{position:sticky;left:0;z-index:1;
border-right:1px solid #e1e4e8}
tbody tr:nth-child(even) td{background:#fafbfc}
tbody tr.ref td{background:#eef5fb}
tbody tr.infeasible td{color:#8a1c1c;background:#fdf3f3}
td.error{white-space:normal;font-style:italic;min-width:16em}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.tags{display:block;margin-left:10px;line-height:1.3}
.tag{font-size:11px;border-radius:3px;padding:0 4px;margin-left:6px;background:#e8e8e8;
color:#444}
.tag.front{background:#dff0e6;color:#11603a}
.tag.bad{background:#f6dada;color:#8a1c1c}
.pm{display:block;color:#777;font-size:11px;line-height:1.2}
footer{color:#777;font-size:12px;margin-top:20px}
"""
_HOWTO = (
    "Each group's first plot shows its primary metric against memory on a log scale: up and to "
    "the left is better. Markers are the mean over seeds and bars span min–max; the grey step "
    "line rings the Pareto frontier (runs no other run beats on both memory and metric); "
    "dashed lines mark the uncompressed “full” reference and, where the data is synthetic, "
    "the oracle AUC. Retrieval groups add recall against queries per second (up and to the "
    "right is better); training runs that recorded a per-epoch history add their loss and "
    "validation AUC curves. Hover a marker for its numbers. Tables give mean ± std over "
    "seeds (the std under the mean) and scroll inside their box."
)
_TIMING_NAMES = {
    "train_s": "train (s)",
    "samples_per_s": "samples/s",
    "build_s": "build (s)",
    "test_eval_s": "test eval (s)",
    "tune_train_s": "tune train (s)",
    "eval_s": "eval (s)",
    "qps_1thread": "QPS, 1 thread",
    "qps_all_threads": "QPS, all threads",
}
# run parameters worth a column when a group's records carry them
_PARAM_COLUMNS = {
    "epochs_run": "epochs run",
    "best_epoch": "best epoch",
    "steps": "steps",
    "disk_bytes_per_vector": "disk (B / vector)",
}


def _timing_name(key: str) -> str:
    if key in _TIMING_NAMES:
        return _TIMING_NAMES[key]
    for suffix, unit in (("_ms", "ms"), ("_s", "s")):
        if key.endswith(suffix):
            return f"{key[: -len(suffix)].replace('_', ' ')} ({unit})"
    return key.replace("_", " ")


def method_styles(methods: Sequence[str]) -> dict[str, tuple[str, str]]:
    """A (colour, marker) per method, stable across the page; colours cycle, markers shift."""
    n, markers = len(PALETTE), list(MARKERS)
    return {
        m: (PALETTE[i % n], markers[(i + i // n) % len(markers)]) for i, m in enumerate(methods)
    }


def _td(text: str, cls: str = "", colspan: int = 1, title: str = "") -> str:
    attrs = f' class="{cls}"' if cls else ""
    attrs += f' colspan="{colspan}"' if colspan > 1 else ""
    attrs += f' title="{escape(title)}"' if title else ""
    return f"<td{attrs}>{escape(text)}</td>"


def _fmt4(v: float) -> str:
    return f"{v:.4f}"


def _stat_td(s: Stat | None, fmt: Callable[[float], str]) -> str:
    """The mean, and under it the std over seeds when there are several."""
    if s is None:
        return _td(DASH, "num")
    if s.std is None:
        return _td(fmt(s.mean), "num")
    return (
        f'<td class="num">{escape(fmt(s.mean))}<span class="pm">± {escape(fmt(s.std))}</span></td>'
    )


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


def _param_keys(group: Group) -> list[str]:
    ok = [r for row in group.rows if row.ok for r in row.records]
    return [k for k in _PARAM_COLUMNS if any(stat([r.params.get(k)]) for r in ok)]


def _head(text: str, cls: str = "", colspan: int = 1) -> str:
    attrs = f' class="{cls}"' if cls else ""
    attrs += f' colspan="{colspan}"' if colspan > 1 else ""
    return f"<th{attrs}>{escape(text)}</th>"


def table_html(group: Group, styles: Mapping[str, tuple[str, str]]) -> str:
    """One row per (method, compression, status); infeasible rows show their error.

    Columns come in groups (run / metrics / timing / params) under a second header row;
    the header sticks to the top of the table's own scroll box, the method column to
    its left.
    """
    show_delta = group.reference is not None and group.primary is not None
    show_speed = group.ref_value("samples_per_s", timing=True) is not None
    param_keys = _param_keys(group)
    show_reached = any(group.reached(row) is not None for row in group.rows)
    run = ["method", "compression (target)"]
    run += ["compression (reached)"] * show_reached + ["memory"]
    metrics = [k.replace("_", " ") for k in group.metric_keys]  # headers wrap at spaces
    if show_delta:
        metrics.append(f"Δ {group.primary} vs {group.reference.method if group.reference else ''}")
    timing = [_timing_name(k) for k in group.timing_keys]
    if show_speed:
        timing.append("samples/s vs full")
    params = ["seeds"] + [_PARAM_COLUMNS[k] for k in param_keys]
    blocks = [("run", run), ("metrics", metrics), ("timing", timing), ("params", params)]
    blocks = [(name, cols) for name, cols in blocks if cols]
    out = ['<div class="tablewrap"><table><thead><tr class="groups">']
    out.extend(_head(name, "gsep" if j else "", len(cols)) for j, (name, cols) in enumerate(blocks))
    out.append('</tr><tr class="cols">')
    text_cols = {"method", "seeds"}
    for j, (_, cols) in enumerate(blocks):
        for c, h in enumerate(cols):
            cls = " ".join(
                x for x in ("" if h in text_cols else "num", "gsep" if j and not c else "") if x
            )
            out.append(_head(h, cls))
    out.append("</tr></thead><tbody>")
    n_measured = len(metrics) + len(timing)
    for row in group.rows:
        flags = (show_reached, show_delta, show_speed)
        out.append(_row_html(group, row, styles, flags, param_keys, n_measured))
    out.append("</tbody></table></div>")
    return "".join(out)


def _row_html(
    group: Group,
    row: Row,
    styles: Mapping[str, tuple[str, str]],
    flags: tuple[bool, bool, bool],
    param_keys: Sequence[str],
    n_measured: int,
) -> str:
    classes = []
    if row is group.reference:
        classes.append("ref")
    if not row.ok:
        classes.append("infeasible")
    cls = f' class="{" ".join(classes)}"' if classes else ""
    color = styles.get(row.method, ("#444444", ""))[0]
    tags = '<span class="tag">reference</span>' if row is group.reference else ""
    tags += '<span class="tag front">Pareto</span>' if row.on_frontier else ""
    tags += "" if row.ok else f'<span class="tag bad">{escape(row.status)}</span>'
    tags = f'<span class="tags">{tags}</span>' if tags else ""  # under the name: narrower
    show_reached, show_delta, show_speed = flags
    mem = row.memory
    cells = [
        f'<td><span class="swatch" style="background:{color}"></span>'
        f"{escape(row.method)}{tags}</td>",
        _td(fmt_ratio(row.compression), "num"),
    ]
    if show_reached:
        cells.append(_td(fmt_ratio(group.reached(row)), "num"))
    if mem is None:
        cells.append(_td(DASH, "num"))
    else:  # exact bytes on hover keep the column narrow
        cells.append(_td(format_bytes(mem.mean), "num", title=f"{mem.mean:,.0f} bytes"))
    sep = "num gsep"
    if row.ok:
        measured = [_stat_td(row.metrics.get(k), _fmt4) for k in group.metric_keys]
        if show_delta:
            measured.append(_td(_delta(group, row), "num"))
        timed = [_stat_td(row.timing.get(k), fmt_number) for k in group.timing_keys]
        if show_speed:
            timed.append(_td(_speed_ratio(group, row), "num"))
        for block in (measured, timed):
            if block:
                block[0] = block[0].replace('class="num"', f'class="{sep}"', 1)
        cells += measured + timed
    elif n_measured > 0:
        msg = "; ".join(row.errors)
        cells.append(_td(msg, "error gsep", colspan=n_measured, title=msg))
    cells.append(_td(", ".join(str(s) for s in row.seeds), "gsep"))
    cells.extend(
        _stat_td(stat(r.params.get(k) for r in row.records), fmt_number) for k in param_keys
    )
    return f"<tr{cls}>{''.join(cells)}</tr>"


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
        f"{figures_html(i, group, styles)}"
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
