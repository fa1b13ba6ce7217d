"""Generic inline SVG plots: a linear-axes scatter/line plot and an annotated heat map.

Pure string building, no plotting library; every text goes through
:func:`html.escape`, and the markup is well-formed XML.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from embedlab.report._mpl import PALETTE
from embedlab.report._numeric import nice_ticks, step_decimals

__all__ = ["XYSeries", "heatmap_svg", "xy_plot_svg"]

_FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif\""


@dataclass(frozen=True)
class XYSeries:
    """Points ``(xs[i], ys[i])`` drawn as dots (``kind="scatter"``) or a line (``"line"``)."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    kind: str = "scatter"
    color: str = PALETTE[0]


def _f(v: float) -> str:
    return f"{v:.1f}"


def _open(width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}" '
        f'class="plot" {_FONT} font-size="12">'
    )


def xy_plot_svg(
    series: Sequence[XYSeries],
    *,
    x_label: str,
    y_label: str,
    title: str = "",
    width: int = 640,
    height: int = 400,
) -> str:
    """A plot with linear axes; non-finite points are left out."""
    clean = []
    for s in series:
        pts = [
            (float(x), float(y))
            for x, y in zip(s.xs, s.ys, strict=False)
            if math.isfinite(x) and math.isfinite(y)
        ]
        if pts:
            clean.append((s, pts))
    label = title or y_label
    if not clean:
        return (
            f'{_open(width, 60, label)}<text x="{width / 2:.0f}" y="34" text-anchor="middle" '
            f'fill="#666666">no plottable points</text></svg>'
        )
    xs = [p[0] for _, pts in clean for p in pts]
    ys = [p[1] for _, pts in clean for p in pts]
    left, top, right_pad, bottom_pad = 64.0, 28.0, 16.0, 52.0
    legend_h = 18.0 * len(clean)
    w, h = width - left - right_pad, height - top - bottom_pad - legend_h

    def span(lo: float, hi: float) -> tuple[float, float]:
        if hi - lo <= 0:
            pad = max(abs(hi) * 0.05, 1e-3)
            return lo - pad, hi + pad
        pad = (hi - lo) * 0.05
        return lo - pad, hi + pad

    x0, x1 = span(min(xs), max(xs))
    y0, y1 = span(min(ys), max(ys))

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * w

    def py(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * h

    out = [_open(width, height, label)]
    if title:
        out.append(
            f'<text x="{_f(left)}" y="16" font-weight="600" fill="#222222">{escape(title)}</text>'
        )
    out.append(
        f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(w)}" height="{_f(h)}" '
        f'fill="#ffffff" stroke="#999999"/>'
    )
    for ticks, axis in ((nice_ticks(x0, x1), "x"), (nice_ticks(y0, y1), "y")):
        dec = step_decimals(ticks)
        for t in ticks:
            if axis == "x" and x0 <= t <= x1:
                x = px(t)
                out.append(
                    f'<line x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(top + h)}" '
                    f'stroke="#eeeeee"/><text x="{_f(x)}" y="{_f(top + h + 16)}" '
                    f'text-anchor="middle" fill="#333333">{t:.{dec}f}</text>'
                )
            elif axis == "y" and y0 <= t <= y1:
                y = py(t)
                out.append(
                    f'<line x1="{_f(left)}" y1="{_f(y)}" x2="{_f(left + w)}" y2="{_f(y)}" '
                    f'stroke="#eeeeee"/><text x="{_f(left - 6)}" y="{_f(y + 4)}" '
                    f'text-anchor="end" fill="#333333">{t:.{dec}f}</text>'
                )
    out.append(
        f'<text x="{_f(left + w / 2)}" y="{_f(top + h + 36)}" text-anchor="middle" '
        f'font-weight="600" fill="#222222">{escape(x_label)}</text>'
    )
    cy = top + h / 2
    out.append(
        f'<text x="14" y="{_f(cy)}" text-anchor="middle" font-weight="600" fill="#222222" '
        f'transform="rotate(-90 14 {_f(cy)})">{escape(y_label)}</text>'
    )
    for s, pts in clean:
        if s.kind == "line":
            coords = " ".join(f"{_f(px(x))},{_f(py(y))}" for x, y in pts)
            out.append(
                f'<polyline points="{coords}" fill="none" stroke="{s.color}" stroke-width="2"/>'
            )
        else:
            out.append(f'<g fill="{s.color}" fill-opacity="0.55">')
            out.extend(f'<circle cx="{_f(px(x))}" cy="{_f(py(y))}" r="2.2"/>' for x, y in pts)
            out.append("</g>")
    ly = top + h + 50
    for s, _ in clean:
        out.append(
            f'<rect x="{_f(left)}" y="{_f(ly - 8)}" width="14" height="8" fill="{s.color}"/>'
            f'<text x="{_f(left + 20)}" y="{_f(ly)}" fill="#222222">{escape(s.name)}</text>'
        )
        ly += 18
    out.append("</svg>")
    return "".join(out)


def _cell_color(t: float) -> str:
    """White (t = 0) to the palette's blue (t = 1)."""
    t = min(1.0, max(0.0, t))
    r, g, b = (round(255 + (c - 255) * t) for c in (0x00, 0x72, 0xB2))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap_svg(
    matrix: Sequence[Sequence[float]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    *,
    title: str = "",
    vmin: float = 0.0,
    vmax: float = 1.0,
    cell: int = 56,
) -> str:
    """A heat map with the value written in each cell (white = ``vmin``, blue = ``vmax``)."""
    n_rows, n_cols = len(row_labels), len(col_labels)
    left = 16 + 7 * max((len(s) for s in row_labels), default=1)
    top = 40.0 + (7 * max((len(s) for s in col_labels), default=1) if n_cols > 4 else 20)
    width = int(left + cell * n_cols + 16)
    height = int(top + cell * n_rows + 16)
    out = [_open(width, height, title or "heat map")]
    if title:
        out.append(f'<text x="8" y="18" font-weight="600" fill="#222222">{escape(title)}</text>')
    rng = vmax - vmin if vmax > vmin else 1.0
    for j, name in enumerate(col_labels):
        x = left + cell * (j + 0.5)
        out.append(
            f'<text x="{_f(x)}" y="{_f(top - 6)}" text-anchor="middle" fill="#333333">'
            f"{escape(name)}</text>"
        )
    for i, name in enumerate(row_labels):
        y = top + cell * i
        out.append(
            f'<text x="{_f(left - 6)}" y="{_f(y + cell / 2 + 4)}" text-anchor="end" '
            f'fill="#333333">{escape(name)}</text>'
        )
        for j in range(n_cols):
            v = float(matrix[i][j])
            t = (v - vmin) / rng if math.isfinite(v) else 0.0
            x = left + cell * j
            text_color = "#ffffff" if t > 0.6 else "#222222"
            shown = f"{v:.3f}" if math.isfinite(v) else "—"
            out.append(
                f'<rect x="{_f(x)}" y="{_f(y)}" width="{cell}" height="{cell}" '
                f'fill="{_cell_color(t)}" stroke="#ffffff"><title>'
                f"{escape(f'{row_labels[i]} vs {col_labels[j]}: {shown}')}</title></rect>"
                f'<text x="{_f(x + cell / 2)}" y="{_f(y + cell / 2 + 4)}" text-anchor="middle" '
                f'fill="{text_color}" font-size="11">{shown}</text>'
            )
    out.append("</svg>")
    return "".join(out)
