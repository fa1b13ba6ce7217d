"""Number formats shared by the report's tables, tooltips and plots."""

from __future__ import annotations

import math

from embedlab.report._summary import Stat

__all__ = ["DASH", "fmt_metric", "fmt_number", "fmt_ratio", "fmt_timing"]

DASH = "—"


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


def fmt_timing(s: Stat | None) -> str:
    """A timing or count: :func:`fmt_number` of the mean, ``± std`` when several seeds."""
    if s is None:
        return DASH
    if s.std is None:
        return fmt_number(s.mean)
    return f"{fmt_number(s.mean)} ± {fmt_number(s.std)}"


def fmt_ratio(c: float | None) -> str:
    """``12.5×``; a dash when missing."""
    return DASH if c is None or not math.isfinite(c) else f"{fmt_number(c)}×"
