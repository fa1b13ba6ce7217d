"""matplotlib to inline SVG: the Agg backend, fixed style, deterministic markup.

matplotlib is imported when a figure is drawn, so ``import embedlab.report`` (and
``embedlab report --help``) stays fast; rendering a page pays for it once. Figures are
:class:`matplotlib.figure.Figure` objects on an Agg canvas, made without pyplot: no
global backend switch, no GUI, nothing left open in a user's session.

:func:`figure_svg` turns a figure into an ``<svg>`` element ready to inline in the
report: no XML prolog, doctype, metadata or global ``<style>``; ``href`` instead of
``xlink:href``; every ``id`` prefixed so several plots can share a page; ``<title>``
tooltips attached to the artists given a ``gid``. The same figure gives the same bytes
(``svg.hashsalt`` is fixed and the date is left out).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["MARKERS", "PALETTE", "RC", "figure_svg", "new_figure", "place_legend", "style"]

# Okabe & Ito's colour-blind-safe palette; its yellow (#F0E442) is unreadable on white,
# so Paul Tol's olive takes its place.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#999933")
# marker names used by the page, as matplotlib marker codes
MARKERS: dict[str, str] = {"circle": "o", "square": "s", "triangle": "^", "diamond": "D"}

RC: dict[str, Any] = {
    "svg.fonttype": "none",  # real <text>: selectable, searchable, checked by the tests
    "svg.hashsalt": "embedlab-report",  # stable ids: same records, same page
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial"],
    "font.size": 12,
    "text.parse_math": False,  # "$" in a method name is text, not mathtext
    "axes.edgecolor": "#999999",
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.8,
    "axes.labelweight": "bold",
    "axes.labelcolor": "#222222",
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "legend.frameon": False,
    "legend.fontsize": 11,
    "figure.dpi": 72,  # 1 pt = 1 px: the SVG's size is its size on the page
}


def style() -> AbstractContextManager[None]:
    """The report's matplotlib settings (:data:`RC`), as a context manager."""
    import matplotlib

    rc: Any = RC  # matplotlib types its keys as a Literal of every rcParam
    return matplotlib.rc_context(rc)


# Fixed margins (px) instead of a layout engine: it would lay each figure out twice.
_MARGIN = {"left": 78.0, "right": 14.0, "top": 12.0, "bottom": 50.0, "gap": 78.0}
_LEGEND_PX_PER_CHAR = 6.6  # DejaVu Sans at 11 px, a little generous
_LEGEND_HANDLE_PX = 48.0


def new_figure(
    size: tuple[float, float], legend_labels: Sequence[str], *, n_cols: int = 1
) -> tuple[Figure, list[Axes]]:
    """A figure of ``size`` px with ``n_cols`` axes side by side and room on the right for
    a legend of ``legend_labels`` (placed by :func:`place_legend`). Call inside
    :func:`style`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = size[0], max(size[1], 30.0 + 19.0 * len(legend_labels))  # legend fits
    legend_w = _LEGEND_HANDLE_PX + _LEGEND_PX_PER_CHAR * max(
        (len(t) for t in legend_labels), default=0
    )
    fig = Figure(figsize=(width / 72, height / 72))
    FigureCanvasAgg(fig)
    right = width - legend_w - _MARGIN["right"]
    axes = fig.subplots(1, n_cols, squeeze=False)[0]
    fig.subplots_adjust(
        left=_MARGIN["left"] / width,
        right=right / width,
        top=1 - _MARGIN["top"] / height,
        bottom=_MARGIN["bottom"] / height,
        wspace=_MARGIN["gap"] / ((right - _MARGIN["left"]) / n_cols),
    )
    return fig, list(axes)


def place_legend(fig: Figure, handles: Sequence[Any], labels: Sequence[str]) -> None:
    """The figure's legend, top right, outside the axes."""
    fig.legend(
        list(handles),
        list(labels),
        loc="upper right",
        bbox_to_anchor=(
            1 - _MARGIN["right"] / (fig.get_figwidth() * 72),
            1 - _MARGIN["top"] / (fig.get_figheight() * 72),
        ),
    )


_DROP = (
    re.compile(r"<\?xml[^>]*\?>\s*"),
    re.compile(r"<!DOCTYPE[^>]*>\s*"),
    re.compile(r"<metadata>.*?</metadata>\s*", re.S),
    re.compile(r"<style[^>]*>.*?</style>\s*", re.S),
    re.compile(r'\s+xmlns:xlink="[^"]*"'),
)
_SIZE = re.compile(r'\b(width|height)="([0-9.]+)pt"')
_ID = re.compile(r'\bid="([^"]+)"')


def figure_svg(
    fig: Figure,
    *,
    id_prefix: str,
    tooltips: Mapping[str, str] | None = None,
    label: str = "",
) -> str:
    """The figure as an inline ``<svg>`` string.

    Args:
        fig: the figure to render.
        id_prefix: prepended to every ``id`` (and reference to it), unique on the page.
        tooltips: ``gid -> text``: a ``<title>`` is put inside the element of that gid.
        label: the SVG's ``aria-label``.
    """
    buf = io.StringIO()
    with style():  # the svg.* settings are read when saving
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    for pattern in _DROP:
        svg = pattern.sub("", svg)
    svg = svg.replace("xlink:href=", "href=")
    for old in dict.fromkeys(_ID.findall(svg)):
        new = f"{id_prefix}-{old}"
        svg = svg.replace(f'id="{old}"', f'id="{new}"').replace(f"#{old})", f"#{new})")
        svg = svg.replace(f'href="#{old}"', f'href="#{new}"')
    for gid, text in (tooltips or {}).items():
        # the tooltip is the group's first child, so hovering any part of it shows it
        svg = svg.replace(
            f'<g id="{id_prefix}-{gid}">',
            f'<g id="{id_prefix}-{gid}"><title>{escape(text, quote=False)}</title>',
            1,
        )
    attrs = f'class="plot" role="img" aria-label="{escape(label)}"'
    svg = _SIZE.sub(r'\1="\2"', svg, count=2)  # 1 pt = 1 px at 72 dpi: sizes in px
    return svg.replace("<svg ", f"<svg {attrs} ", 1).strip()
