"""Inline SVG plots for the report: a log-x line plot with error bars, reference lines
and a highlighted Pareto frontier. Pure string building, no plotting library.

All text placed into the SVG goes through :func:`html.escape`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from embedlab.report._numeric import (
    decade,
    format_bytes,
    log_ticks,
    nice_ticks,
    pareto_frontier,
    step_decimals,
)

__all__ = [
    "MARKERS",
    "PALETTE",
    "Point",
    "RefLine",
    "Series",
    "line_plot_svg",
]

# Okabe & Ito's colour-blind-safe palette; its yellow (#F0E442) is unreadable on white,
# so Paul Tol's olive takes its place.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#999933")
MARKERS = ("circle", "square", "triangle", "diamond")

_FONT = "font-family=\"system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif\""


@dataclass(frozen=True)
class Point:
    """One marker: ``y`` is the mean, ``y_lo``/``y_hi`` the ends of its error bar."""

    x: float
    y: float
    y_lo: float | None = None
    y_hi: float | None = None
    tooltip: str = ""


@dataclass(frozen=True)
class Series:
    """A line with markers; ``marker`` is one of :data:`MARKERS`."""

    name: str
    points: Sequence[Point]
    color: str
    marker: str = "circle"


@dataclass(frozen=True)
class RefLine:
    """A dashed horizontal line across the plot, labelled at its left end."""

    label: str
    y: float
    color: str = "#444444"


def _f(v: float) -> str:
    return f"{v:.1f}"


def _marker(kind: str, x: float, y: float, color: str, tooltip: str) -> str:
    title = f"<title>{escape(tooltip)}</title>" if tooltip else ""
    style = f'fill="{color}" stroke="#ffffff" stroke-width="1"'
    if kind == "square":
        return f'<rect x="{_f(x - 4)}" y="{_f(y - 4)}" width="8" height="8" {style}>{title}</rect>'
    if kind == "triangle":
        pts = f"{_f(x)},{_f(y - 5)} {_f(x + 5)},{_f(y + 4)} {_f(x - 5)},{_f(y + 4)}"
        return f'<polygon points="{pts}" {style}>{title}</polygon>'
    if kind == "diamond":
        pts = f"{_f(x)},{_f(y - 5.5)} {_f(x + 5)},{_f(y)} {_f(x)},{_f(y + 5.5)} {_f(x - 5)},{_f(y)}"
        return f'<polygon points="{pts}" {style}>{title}</polygon>'
    return f'<circle cx="{_f(x)}" cy="{_f(y)}" r="4.5" {style}>{title}</circle>'


def _truncate(text: str, n: int = 22) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class _Frame:
    """Maps data to pixels: log10 on x, linear on y."""

    def __init__(self, xs: Sequence[float], ys: Sequence[float], box: tuple[float, ...]) -> None:
        self.left, self.top, self.width, self.height = box
        lx = [math.log10(x) for x in xs]
        lo, hi = min(lx), max(lx)
        pad = max((hi - lo) * 0.06, (1.0 - (hi - lo)) / 2, 0.1)  # at least one decade wide
        self.lx0, self.lx1 = lo - pad, hi + pad
        ylo, yhi = min(ys), max(ys)
        span = yhi - ylo
        ypad = span * 0.08 if span > 0 else max(abs(yhi) * 0.01, 1e-3)
        self.y0, self.y1 = ylo - ypad, yhi + ypad

    def px(self, x: float) -> float:
        return self.left + (math.log10(x) - self.lx0) / (self.lx1 - self.lx0) * self.width

    def py(self, y: float) -> float:
        return self.top + (self.y1 - y) / (self.y1 - self.y0) * self.height


def line_plot_svg(
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    refs: Sequence[RefLine] = (),
    frontier: bool = True,
    maximize: bool = True,
    x_format: Callable[[float], str] = format_bytes,
    width: int = 960,
    height: int = 440,
    title: str = "",
) -> str:
    """An SVG line plot with a log-scaled x axis, as a string ready to inline in HTML.

    Points with ``x <= 0`` or a non-finite coordinate are left out. The Pareto frontier
    (less ``x``, better ``y``) over the points of all series is drawn as a grey step line
    with rings around its points. Every marker carries a ``<title>`` tooltip.
    """
    clean = [
        Series(s.name, [p for p in s.points if _plottable(p)], s.color, s.marker) for s in series
    ]
    clean = [s for s in clean if s.points]
    refs = [r for r in refs if math.isfinite(r.y)]
    legend_rows = len(clean) + len(refs) + (1 if frontier and clean else 0)
    height = max(height, 40 + 18 * legend_rows + 60)
    legend_w = 190
    box = (72.0, 18.0, width - 72.0 - legend_w - 16.0, height - 18.0 - 58.0)
    label = escape(title or y_label)
    if not clean:
        msg = "no plottable points: no run has both a memory size and this metric"
        return (
            f"{_svg_open(width, 90, label)}"
            f'<rect x="0.5" y="0.5" width="{width - 1}" height="89" fill="#fafafa" '
            f'stroke="#dddddd"/><text x="{width / 2:.0f}" y="49" '
            f'text-anchor="middle" fill="#666666">{escape(msg)}</text></svg>'
        )
    xs = [p.x for s in clean for p in s.points]
    ys = [
        v
        for s in clean
        for p in s.points
        for v in (p.y, p.y_lo, p.y_hi)
        if v is not None and math.isfinite(v)
    ]
    ys += [r.y for r in refs]
    fr = _Frame(xs, ys, box)
    parts = [_svg_open(width, height, label), _axes(fr, x_label, y_label, x_format)]
    parts.append(
        f'<svg x="{_f(fr.left)}" y="{_f(fr.top)}" overflow="hidden" '
        f'width="{_f(fr.width)}" height="{_f(fr.height)}"><g transform="translate('
        f'{_f(-fr.left)},{_f(-fr.top)})">'
    )
    parts.extend(_refs(fr, refs))
    if frontier:
        parts.append(_frontier(fr, clean, maximize))
    for s in clean:
        parts.append(_series(fr, s))
    parts.append("</g></svg>")
    parts.append(_legend(fr, clean, refs, frontier, x0=fr.left + fr.width + 16))
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{label}" '
        f'class="plot" {_FONT} font-size="12">'
    )


def _plottable(p: Point) -> bool:
    return math.isfinite(p.x) and p.x > 0 and math.isfinite(p.y)


def _axes(fr: _Frame, x_label: str, y_label: str, x_format: Callable[[float], str]) -> str:
    left, top, w, h = fr.left, fr.top, fr.width, fr.height
    bottom, right = top + h, left + w
    out = [
        f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(w)}" height="{_f(h)}" '
        f'fill="#ffffff" stroke="#999999"/>'
    ]
    lo, hi = 10.0**fr.lx0, 10.0**fr.lx1
    majors = log_ticks(lo, hi)
    # minor ticks at 2..9 x 10^k only when majors are whole decades
    if all(math.isclose(math.log10(t), round(math.log10(t))) for t in majors):
        for k in range(math.floor(fr.lx0), math.ceil(fr.lx1) + 1):
            for m in range(2, 10):
                t = decade(m, k)
                if lo <= t <= hi:
                    x = fr.px(t)
                    out.append(
                        f'<line x1="{_f(x)}" y1="{_f(bottom)}" x2="{_f(x)}" '
                        f'y2="{_f(bottom + 3)}" stroke="#999999"/>'
                    )
    last_label = -math.inf
    for t in majors:
        x = fr.px(t)
        out.append(
            f'<line x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(bottom)}" '
            f'stroke="#eeeeee"/><line x1="{_f(x)}" y1="{_f(bottom)}" x2="{_f(x)}" '
            f'y2="{_f(bottom + 6)}" stroke="#666666"/>'
        )
        if x - last_label >= 58:  # keep labels apart
            out.append(
                f'<text x="{_f(x)}" y="{_f(bottom + 19)}" text-anchor="middle" '
                f'fill="#333333">{escape(x_format(t))}</text>'
            )
            last_label = x
    yticks = nice_ticks(fr.y0, fr.y1)
    dec = step_decimals(yticks)
    for t in yticks:
        y = fr.py(t)
        out.append(
            f'<line x1="{_f(left)}" y1="{_f(y)}" x2="{_f(right)}" y2="{_f(y)}" '
            f'stroke="#eeeeee"/><line x1="{_f(left - 5)}" y1="{_f(y)}" x2="{_f(left)}" '
            f'y2="{_f(y)}" stroke="#666666"/><text x="{_f(left - 8)}" y="{_f(y + 4)}" '
            f'text-anchor="end" fill="#333333">{t:.{dec}f}</text>'
        )
    out.append(
        f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(w)}" height="{_f(h)}" '
        f'fill="none" stroke="#999999"/>'
    )
    out.append(
        f'<text x="{_f(left + w / 2)}" y="{_f(bottom + 42)}" text-anchor="middle" '
        f'font-weight="600" fill="#222222">{escape(x_label)}</text>'
    )
    cy = top + h / 2
    out.append(
        f'<text x="16" y="{_f(cy)}" text-anchor="middle" font-weight="600" '
        f'fill="#222222" transform="rotate(-90 16 {_f(cy)})">{escape(y_label)}</text>'
    )
    return "".join(out)


def _refs(fr: _Frame, refs: Sequence[RefLine]) -> list[str]:
    out: list[str] = []
    last = -math.inf
    for r in sorted(refs, key=lambda r: fr.py(r.y)):
        y = fr.py(r.y)
        out.append(
            f'<line x1="{_f(fr.left)}" y1="{_f(y)}" x2="{_f(fr.left + fr.width)}" '
            f'y2="{_f(y)}" stroke="{r.color}" stroke-width="1.3" stroke-dasharray="6 4">'
            f"<title>{escape(f'{r.label}: {r.y:.4f}')}</title></line>"
        )
        ly = max(y - 4, last + 13, fr.top + 11)
        last = ly
        out.append(
            f'<text x="{_f(fr.left + 6)}" y="{_f(ly)}" fill="{r.color}" '
            f'font-size="11">{escape(f"{r.label} {r.y:.4f}")}</text>'
        )
    return out


def _frontier(fr: _Frame, series: Sequence[Series], maximize: bool) -> str:
    pts = [p for s in series for p in s.points]
    idx = pareto_frontier([p.x for p in pts], [p.y for p in pts], maximize=maximize)
    front = [pts[i] for i in idx]
    coords: list[str] = []
    for i, p in enumerate(front):
        x, y = fr.px(p.x), fr.py(p.y)
        if i:
            coords.append(f"{_f(x)},{_f(fr.py(front[i - 1].y))}")  # step: flat, then up
        coords.append(f"{_f(x)},{_f(y)}")
    coords.append(f"{_f(fr.left + fr.width)},{_f(fr.py(front[-1].y))}")
    rings = "".join(
        f'<circle cx="{_f(fr.px(p.x))}" cy="{_f(fr.py(p.y))}" r="8" fill="none" '
        f'stroke="#888888" stroke-width="1.2"/>'
        for p in front
    )
    return (
        f'<g class="frontier"><polyline points="{" ".join(coords)}" fill="none" '
        f'stroke="#9a9a9a" stroke-width="2.5" stroke-opacity="0.6"/>{rings}</g>'
    )


def _series(fr: _Frame, s: Series) -> str:
    pts = sorted(s.points, key=lambda p: p.x)
    out = ['<g class="series">']
    if len(pts) > 1:
        coords = " ".join(f"{_f(fr.px(p.x))},{_f(fr.py(p.y))}" for p in pts)
        out.append(
            f'<polyline points="{coords}" fill="none" stroke="{s.color}" stroke-width="1.8"/>'
        )
    for p in pts:
        if p.y_lo is not None and p.y_hi is not None and p.y_hi > p.y_lo:
            x, y0, y1 = fr.px(p.x), fr.py(p.y_lo), fr.py(p.y_hi)
            out.append(
                f'<path d="M{_f(x)},{_f(y0)}V{_f(y1)}M{_f(x - 3)},{_f(y0)}H{_f(x + 3)}'
                f'M{_f(x - 3)},{_f(y1)}H{_f(x + 3)}" stroke="{s.color}" fill="none" '
                f'stroke-width="1.2"/>'
            )
    for p in pts:
        out.append(_marker(s.marker, fr.px(p.x), fr.py(p.y), s.color, p.tooltip))
    out.append("</g>")
    return "".join(out)


def _legend(
    fr: _Frame, series: Sequence[Series], refs: Sequence[RefLine], frontier: bool, *, x0: float
) -> str:
    out = ['<g class="legend">']
    y = fr.top + 8
    for s in series:
        out.append(
            f'<line x1="{_f(x0)}" y1="{_f(y)}" x2="{_f(x0 + 24)}" y2="{_f(y)}" '
            f'stroke="{s.color}" stroke-width="1.8"/>'
        )
        out.append(_marker(s.marker, x0 + 12, y, s.color, s.name))
        out.append(
            f'<text x="{_f(x0 + 32)}" y="{_f(y + 4)}" fill="#222222">'
            f"{escape(_truncate(s.name))}<title>{escape(s.name)}</title></text>"
        )
        y += 18
    for r in refs:
        out.append(
            f'<line x1="{_f(x0)}" y1="{_f(y)}" x2="{_f(x0 + 24)}" y2="{_f(y)}" '
            f'stroke="{r.color}" stroke-width="1.3" stroke-dasharray="6 4"/>'
            f'<text x="{_f(x0 + 32)}" y="{_f(y + 4)}" fill="#222222">'
            f"{escape(_truncate(r.label))}</text>"
        )
        y += 18
    if frontier and series:
        out.append(
            f'<line x1="{_f(x0)}" y1="{_f(y)}" x2="{_f(x0 + 24)}" y2="{_f(y)}" '
            f'stroke="#9a9a9a" stroke-width="2.5" stroke-opacity="0.6"/>'
            f'<text x="{_f(x0 + 32)}" y="{_f(y + 4)}" fill="#222222">Pareto frontier</text>'
        )
    out.append("</g>")
    return "".join(out)
