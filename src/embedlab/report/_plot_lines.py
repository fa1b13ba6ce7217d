"""The report's line plot, drawn with matplotlib: one line per series, error bars,
dashed reference lines and the Pareto frontier highlighted, as inline SVG.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from embedlab.report._format import fmt_number
from embedlab.report._mpl import MARKERS, figure_svg, new_figure, place_legend, style
from embedlab.report._numeric import format_bytes, log_ticks, pareto_frontier

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["FRONTIER_COLOR", "Point", "RefLine", "Series", "line_plot_svg"]

Scale = Literal["log", "linear"]
FRONTIER_COLOR = "#9a9a9a"
_LEGEND_CHARS = 28


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
    """A line with markers; ``marker`` is a key of :data:`~embedlab.report._mpl.MARKERS`."""

    name: str
    points: Sequence[Point]
    color: str
    marker: str = "circle"


@dataclass(frozen=True)
class RefLine:
    """A dashed horizontal line across the plot, named in the legend with its value."""

    label: str
    y: float
    color: str = "#444444"


def _truncate(text: str, n: int = _LEGEND_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _plottable(p: Point, x_scale: Scale, y_scale: Scale) -> bool:
    ok = math.isfinite(p.x) and math.isfinite(p.y)
    ok = ok and (x_scale == "linear" or p.x > 0) and (y_scale == "linear" or p.y > 0)
    return ok


def _limits(values: Sequence[float], scale: Scale) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if scale == "log":  # at least one decade wide, 6 % margins
        llo, lhi = math.log10(lo), math.log10(hi)
        pad = max((lhi - llo) * 0.06, (1.0 - (lhi - llo)) / 2, 0.1)
        return 10.0 ** (llo - pad), 10.0 ** (lhi + pad)
    span = hi - lo
    pad = span * 0.08 if span > 0 else max(abs(hi) * 0.01, 1e-3)
    return lo - pad, hi + pad


def _set_axis(
    ax: Axes,
    which: Literal["x", "y"],
    scale: Scale,
    lims: tuple[float, float],
    fmt: Callable[[float], str] | None,
) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)(scale)
    (ax.set_xlim if which == "x" else ax.set_ylim)(*lims)
    if scale == "log":
        majors = log_ticks(*lims)
        axis.set_major_locator(FixedLocator(majors))
        axis.set_minor_locator(NullLocator())  # minor ticks would double the drawing time
        fmt = fmt or fmt_number  # matplotlib's own log labels are mathtext
    if fmt is not None:
        axis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt(v)))


def line_plot_svg(
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    refs: Sequence[RefLine] = (),
    frontier: bool = True,
    maximize: bool = True,
    x_lower_better: bool = True,
    x_scale: Scale = "log",
    y_scale: Scale = "linear",
    x_format: Callable[[float], str] | None = format_bytes,
    y_format: Callable[[float], str] | None = None,
    title: str = "",
    id_prefix: str = "plot",
    size: tuple[float, float] = (960, 420),
) -> str:
    """An SVG line plot as a string ready to inline in HTML.

    Points that are not finite (or not positive on a log axis) are left out; with none
    left, a short ``<p>`` says so instead. The Pareto frontier over the points of all
    series (better ``x`` and better ``y``; ``x_lower_better`` and ``maximize`` say which
    way) is a grey step line with rings around its points. Every marker carries a
    ``<title>`` tooltip.

    Args:
        series: the lines; each gets its colour and marker.
        x_label: x axis label. y_label: y axis label.
        refs: dashed horizontal reference lines.
        frontier: draw the Pareto frontier.
        maximize: larger ``y`` is better (for the frontier).
        x_lower_better: smaller ``x`` is better (for the frontier).
        x_scale: ``"log"`` or ``"linear"``. y_scale: likewise.
        x_format: tick label of an x value (``None``: matplotlib's on a linear axis,
            ``1,000`` style on a log one).
        y_format: tick label of a y value, likewise.
        title: the SVG's accessible label.
        id_prefix: unique on the page; prefixes the SVG's ids.
        size: (width, height) in pixels.
    """
    clean = [
        Series(s.name, [p for p in s.points if _plottable(p, x_scale, y_scale)], s.color, s.marker)
        for s in series
    ]
    clean = [s for s in clean if s.points]
    refs = [r for r in refs if math.isfinite(r.y) and (y_scale == "linear" or r.y > 0)]
    if not clean:
        return (
            '<p class="noplot">no plottable points: no run has both '
            f"{x_label.split(' (')[0]} and {y_label}</p>"
        )
    xs = [p.x for s in clean for p in s.points]
    ys = [
        v
        for s in clean
        for p in s.points
        for v in (p.y, p.y_lo, p.y_hi)
        if v is not None and math.isfinite(v) and (y_scale == "linear" or v > 0)
    ]
    ys += [r.y for r in refs]
    tooltips: dict[str, str] = {}
    with style():
        names = [_truncate(s.name) for s in clean] + [_ref_label(r) for r in refs]
        fig, (ax,) = new_figure(size, [*names, "Pareto frontier"])
        for r in refs:
            ax.axhline(
                r.y, color=r.color, linestyle=(0, (6, 4)), linewidth=1.3, label=_ref_label(r)
            )
        if frontier:
            _frontier(
                ax,
                clean,
                maximize=maximize,
                x_lower_better=x_lower_better,
                right=_limits(xs, x_scale)[1],
            )
        for s in clean:
            _series(ax, s, tooltips, len(tooltips))
        _set_axis(ax, "x", x_scale, _limits(xs, x_scale), x_format)
        _set_axis(ax, "y", y_scale, _limits(ys, y_scale), y_format)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        handles, labels = ax.get_legend_handles_labels()
        order = sorted(range(len(labels)), key=lambda i: _legend_rank(labels[i], refs))
        place_legend(fig, [handles[i] for i in order], [labels[i] for i in order])
        return figure_svg(fig, id_prefix=id_prefix, tooltips=tooltips, label=title or y_label)


def _ref_label(r: RefLine) -> str:
    return f"{_truncate(r.label)} {r.y:.4f}"


def _legend_rank(label: str, refs: Sequence[RefLine]) -> int:
    """Series first, then the reference lines, then the frontier."""
    if label == "Pareto frontier":
        return 2
    return 1 if any(label.startswith(_truncate(r.label)) for r in refs) else 0


def _series(ax: Axes, s: Series, tooltips: dict[str, str], first: int) -> None:
    pts = sorted(s.points, key=lambda p: p.x)
    marker = MARKERS.get(s.marker, "o")
    ax.plot(
        [p.x for p in pts],
        [p.y for p in pts],
        color=s.color,
        linewidth=1.8,
        marker=marker,
        markersize=7,
        markeredgecolor="#ffffff",
        label=_truncate(s.name),
        zorder=3,
    )
    for i, p in enumerate(pts):
        if p.y_lo is not None and p.y_hi is not None and p.y_hi > p.y_lo:
            ax.errorbar(
                [p.x],
                [p.y],
                yerr=[[p.y - p.y_lo], [p.y_hi - p.y]],
                fmt="none",
                ecolor=s.color,
                elinewidth=1.2,
                capsize=3,
                zorder=3,
            )
        if p.tooltip:
            # an invisible-edged twin of the marker carries the tooltip
            gid = f"pt{first + i}"
            (hit,) = ax.plot(
                [p.x],
                [p.y],
                linestyle="none",
                marker=marker,
                markersize=7,
                color=s.color,
                markeredgecolor="#ffffff",
                zorder=4,
            )
            hit.set_gid(gid)
            tooltips[gid] = p.tooltip


def _frontier(
    ax: Axes, series: Sequence[Series], *, maximize: bool, x_lower_better: bool, right: float
) -> None:
    pts = [p for s in series for p in s.points]
    xs = [p.x if x_lower_better else -p.x for p in pts]
    idx = pareto_frontier(xs, [p.y for p in pts], maximize=maximize)
    front = sorted((pts[i] for i in idx), key=lambda p: p.x)
    fx, fy = [p.x for p in front], [p.y for p in front]
    if x_lower_better:  # the last point's level holds on to the right edge
        fx, fy = [*fx, right], [*fy, fy[-1]]
    ax.plot(
        fx,
        fy,
        color=FRONTIER_COLOR,
        alpha=0.6,
        linewidth=2.5,
        label="Pareto frontier",
        drawstyle="steps-post" if x_lower_better else "steps-pre",
        zorder=2,
    )
    (rings,) = ax.plot(
        [p.x for p in front],
        [p.y for p in front],
        linestyle="none",
        marker="o",
        markersize=16,
        markerfacecolor="none",
        markeredgecolor="#888888",
        markeredgewidth=1.2,
        zorder=2,
    )
    rings.set_gid("frontier")
