"""Exact rescaling by powers of two, so that data at 1e200 or 1e-200 neither overflows nor
underflows when it is squared.

Dividing by ``2**e`` only changes the exponent of every float64, so it loses no digits (short
of subnormals); estimators that are invariant to scale (ratios of distances, correlations,
CKA, cosines) run on the rescaled data and give the same answer, and scale-dependent results
are multiplied back at the end.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pow2_scale", "unit_rows"]


def pow2_scale(a: np.ndarray, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(a / s, s)`` in float64 with ``s`` a power of two per ``axis`` (or one for all).

    ``max |a / s|`` lies in ``[1, 2)`` (per slice along ``axis``); all-zero slices keep
    ``s = 1``. ``s`` has ``a``'s shape with ``axis`` reduced to 1 (a 0-d array for
    ``axis=None``), so ``scaled * s`` broadcasts back.
    """
    x = np.asarray(a, dtype=np.float64)
    peak = np.max(np.abs(x), axis=axis, keepdims=axis is not None) if x.size else np.float64(0)
    _, exp = np.frexp(peak)  # peak = m * 2**exp with m in [0.5, 1)
    s = np.where(peak > 0, np.ldexp(1.0, exp - 1), 1.0)  # exp - 1: 2**1023 at most, finite
    return x / s, np.asarray(s)


def unit_rows(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``a (n, dim)`` scaled to unit L2 norm at any magnitude, float64.

    Returns ``(unit, zero)``: all-zero rows stay zero and are flagged in ``zero (n,)``.
    """
    scaled, _ = pow2_scale(a, axis=1)
    norms = np.linalg.norm(scaled, axis=1, keepdims=True)  # in [1, 2 sqrt(dim)) or 0
    zero = norms[:, 0] == 0
    return scaled / np.where(norms > 0, norms, 1.0), zero
