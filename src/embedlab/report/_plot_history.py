"""Per-epoch training curves with matplotlib: train loss and validation AUC, side by side."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from embedlab.report._mpl import MARKERS, figure_svg, new_figure, place_legend, style

__all__ = ["Curve", "history_plot_svg"]

_LEGEND_CHARS = 34


@dataclass(frozen=True)
class Curve:
    """One configuration's curves: the value at each epoch (``nan`` where not recorded).

    ``epochs``, ``train_loss`` and ``valid_auc`` have the same length.
    """

    name: str
    epochs: Sequence[float]
    train_loss: Sequence[float]
    valid_auc: Sequence[float]
    color: str
    marker: str = "circle"
    tooltip: str = ""


def _short(name: str) -> str:
    return name if len(name) <= _LEGEND_CHARS else name[: _LEGEND_CHARS - 1] + "…"


def _finite(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(x) and math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def history_plot_svg(
    curves: Sequence[Curve],
    *,
    title: str = "",
    id_prefix: str = "history",
    size: tuple[float, float] = (960, 360),
) -> str:
    """Two panels sharing the legend: train loss (left) and validation AUC (right) per epoch.

    Curves without a finite value are left out; with none left, a short ``<p>`` says so.
    Each line carries its ``tooltip`` as a ``<title>``.
    """
    panels = (("train_loss", "train loss"), ("valid_auc", "valid AUC"))
    kept = [c for c in curves if any(_finite(c.epochs, getattr(c, key))[0] for key, _ in panels)]
    if not kept:
        return '<p class="noplot">no plottable points: no run recorded a per-epoch history</p>'
    from matplotlib.ticker import MaxNLocator

    tooltips: dict[str, str] = {}
    with style():
        fig, axes = new_figure(size, [_short(c.name) for c in kept], n_cols=2)
        for ax, (key, label) in zip(axes, panels, strict=True):
            for i, c in enumerate(kept):
                xs, ys = _finite(c.epochs, getattr(c, key))
                if not xs:
                    continue
                name = _short(c.name)
                (line,) = ax.plot(
                    xs,
                    ys,
                    color=c.color,
                    marker=MARKERS.get(c.marker, "o"),
                    markersize=5,
                    linewidth=1.6,
                    label=name,
                )
                if c.tooltip:
                    gid = f"{key}{i}"
                    line.set_gid(gid)
                    tooltips[gid] = c.tooltip
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        # one legend entry per curve, whichever panel drew it
        seen: dict[str, object] = {}
        for ax in axes:
            for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
                seen.setdefault(name, handle)
        place_legend(fig, list(seen.values()), list(seen))
        return figure_svg(fig, id_prefix=id_prefix, tooltips=tooltips, label=title)
