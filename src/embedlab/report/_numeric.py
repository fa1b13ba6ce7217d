"""Numbers behind the plots: axis ticks, byte labels and the Pareto frontier."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["decade", "format_bytes", "log_ticks", "nice_ticks", "pareto_frontier", "step_decimals"]

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def format_bytes(n: float) -> str:
    """Human-readable size in decimal units (1 KB = 1000 B), 3 significant digits."""
    if not math.isfinite(n):
        return "—"
    value = float(n)
    unit = 0
    while abs(value) >= 999.5 and unit < len(_UNITS) - 1:
        value /= 1000.0
        unit += 1
    return f"{value:.3g} {_UNITS[unit]}"


def pareto_frontier(
    xs: Sequence[float], ys: Sequence[float], *, maximize: bool = True
) -> list[int]:
    """Indices of the non-dominated points, ordered by ``x``.

    Smaller ``x`` is better; larger ``y`` is better when ``maximize`` (smaller otherwise).
    A point is dominated when another is at least as good on both axes and strictly
    better on one, so exact duplicates of a frontier point are all kept.
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys must have the same length, got {len(xs)} and {len(ys)}")
    if not all(math.isfinite(v) for v in (*xs, *ys)):
        raise ValueError("pareto_frontier needs finite coordinates")
    sign = 1.0 if maximize else -1.0
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    best = -math.inf  # best (signed) y among points with strictly smaller x
    out: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and xs[order[j]] == xs[order[i]]:
            j += 1
        same_x = order[i:j]
        group_best = max(sign * ys[k] for k in same_x)
        if group_best > best:
            out.extend(k for k in same_x if sign * ys[k] == group_best)
            best = group_best
        i = j
    return sorted(out, key=lambda k: (xs[k], k))


def decade(m: int, k: int) -> float:
    # m / 10**-k is exact where m * 10.0**k is not (3 * 10.0**-1 = 0.30000000000000004)
    return m * 10.0**k if k >= 0 else m / 10.0**-k


def log_ticks(lo: float, hi: float, *, min_ticks: int = 3) -> list[float]:
    """Tick values for a log axis over ``[lo, hi]``: powers of ten, else 1-2-5, else 1..9."""
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ValueError(f"log_ticks needs 0 < lo <= hi, got lo={lo}, hi={hi}")
    k0 = math.floor(math.log10(lo))
    k1 = math.ceil(math.log10(hi))
    ticks: list[float] = []
    for mantissas, need in (((1,), min_ticks), ((1, 2, 5), 2), (tuple(range(1, 10)), 1)):
        ticks = [
            t
            for k in range(k0, k1 + 1)
            for m in mantissas
            if lo * (1 - 1e-9) <= (t := decade(m, k)) <= hi * (1 + 1e-9)
        ]
        if len(ticks) >= need:
            return ticks
    return ticks or [lo]


def nice_ticks(lo: float, hi: float, *, target: int = 5) -> list[float]:
    """About ``target`` evenly spaced ticks on a 1-2-5 step inside ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"nice_ticks needs finite lo <= hi, got lo={lo}, hi={hi}")
    if lo == hi:
        return [lo]
    step = _nice_step((hi - lo) / max(target, 1))
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [float(f"{i * step:.12g}") for i in range(first, last + 1)]


def _nice_step(raw: float) -> float:
    """The 1-2-5 step nearest to ``raw`` on a log scale."""
    k = math.floor(math.log10(raw))
    steps = [decade(m, k) for m in (1, 2, 5, 10)]
    return min(steps, key=lambda s: abs(math.log(s / raw)))


def step_decimals(ticks: Sequence[float]) -> int:
    if len(ticks) < 2:
        return 4
    step = abs(ticks[1] - ticks[0])
    return max(0, -math.floor(math.log10(step) + 1e-9))
