"""Geometry of an embedding space: alignment and uniformity, neural collapse, hubness."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from embedlab._validation import (
    check_distinct_points,
    check_enough_points,
    check_int,
    check_label_vector,
    check_points,
    check_positive_float,
    check_same_length,
)
from embedlab.analysis._knn import Backend, knn
from embedlab.analysis._scale import pow2_scale
from embedlab.losses.distances import Distance

_LOG_MAX = math.log(np.finfo(np.float64).max)


def _too_large(what: str, log_value: float, advice: str) -> ValueError:
    return ValueError(
        f"{what} is about 1e{log_value / math.log(10):.0f}, beyond float64's range "
        f"(1.8e308); {advice}"
    )


__all__ = [
    "NeuralCollapse",
    "alignment",
    "hubness",
    "k_occurrence",
    "neural_collapse",
    "uniformity",
]


def alignment(x: Any, y: Any, *, alpha: float = 2.0) -> float:
    """Alignment loss ``E ||f(x) - f(y)||^alpha`` over positive pairs (Wang & Isola, ICML 2020).

    Args:
        x: ``(n_pairs, dim)`` embeddings of one side of each positive pair.
        y: ``(n_pairs, dim)`` embeddings of the other side (row ``i`` pairs with row ``i``).
        alpha: exponent, ``> 0``. Lower is better. Wang & Isola use L2-normalised embeddings.

    Computed on both sides rescaled by one power of two ``s`` (so nothing overflows on the
    way) as ``s^alpha * mean(||x_s - y_s||^alpha)`` in log space: a value below float64's
    range underflows to 0, one above it raises ``ValueError``.
    """
    a = check_points("x", x).astype(np.float64)
    b = check_points("y", y).astype(np.float64)
    check_same_length("x", a, "y", b)
    alpha = check_positive_float("alpha", alpha)
    _, s = pow2_scale(np.concatenate([a, b]))
    norms = np.linalg.norm(a / s - b / s, axis=1)  # each in [0, 4 sqrt(dim))
    if not norms.any():
        return 0.0
    with np.errstate(divide="ignore"):
        logs = alpha * np.log(norms)  # -inf for identical pairs
    top = float(logs.max())
    log_mean = top + math.log(float(np.exp(logs - top).sum())) - math.log(norms.size)
    log_value = alpha * math.log(float(s)) + log_mean
    if log_value > _LOG_MAX:
        raise _too_large(
            f"alignment (alpha={alpha:g})", log_value, "L2-normalise x and y (Wang & Isola do)"
        )
    return math.exp(log_value)


def uniformity(x: Any, *, t: float = 2.0, block: int = 2048) -> float:
    """Uniformity loss ``log E_{i<j} exp(-t ||x_i - x_j||^2)`` (Wang & Isola, ICML 2020).

    Over all ``n (n - 1) / 2`` distinct pairs, computed in blocks of rows with a running
    log-sum-exp, so memory stays ``O(block * n)``. Lower is more uniform. Wang & Isola use
    L2-normalised embeddings (the minimum then depends on ``dim``); subsample large ``n``.

    Distances are computed on ``x`` rescaled by a power of two ``s`` and the exponent is
    ``-t s^2 d^2`` evaluated without overflow: identical points give 0, data so spread that
    the value is below float64's range (about ``-1e308``) raise ``ValueError``, and data so
    small that ``t d^2`` underflows give 0 (the exact value rounds to it).

    Args:
        x: ``(n_points, dim)``, at least 2 points.
        t: temperature, ``> 0``.
    """
    a = check_points("x", x, min_points=2).astype(np.float64)
    t = check_positive_float("t", t)
    block = check_int("block", block, min_value=1)
    n = a.shape[0]
    a, s = pow2_scale(a)
    a = a - a.mean(axis=0)
    with np.errstate(over="ignore", under="ignore"):
        factor = t * float(s) * float(s)  # may be inf (huge data) or 0 (tiny data)
    sq = (a * a).sum(axis=1)
    running_max = -np.inf
    running_sum = 0.0  # sum of exp(v - running_max)
    for start in range(0, n - 1, block):
        stop = min(n - 1, start + block)
        # rows start..stop-1 against every later column j > i
        d2 = sq[start:stop, None] + sq[None, start + 1 :] - 2.0 * a[start:stop] @ a[start + 1 :].T
        rows = np.arange(start, stop)[:, None]
        cols = np.arange(start + 1, n)[None, :]
        d2 = np.clip(d2[cols > rows], 0.0, None)
        vals = np.zeros_like(d2)  # identical pairs: exp(0) (0 * inf would be NaN)
        pos = d2 > 0
        with np.errstate(over="ignore", under="ignore"):
            vals[pos] = -factor * d2[pos]
        m = float(vals.max())
        if m == -np.inf:  # every pair of the block is beyond float64's range
            continue
        if m > running_max:
            running_sum = running_sum * float(np.exp(running_max - m)) if running_sum else 0.0
            running_max = m
        running_sum += float(np.exp(vals - running_max).sum())
    if running_max == -np.inf:
        raise ValueError(
            f"uniformity (t={t:g}) is below -1.8e308, beyond float64's range: every pair of x "
            "is too far apart; L2-normalise x (Wang & Isola do)"
        )
    n_pairs = n * (n - 1) / 2
    return float(running_max + np.log(running_sum) - np.log(n_pairs))


@dataclass(frozen=True)
class NeuralCollapse:
    """Neural-collapse metrics of features (Papyan, Han & Donoho, PNAS 2020). All are 0 at
    perfect collapse onto a simplex equiangular tight frame (ETF).

    Attributes:
        nc1: within-class variability ``Tr(S_W S_B^+) / C``.
        equinorm: coefficient of variation of the norms of the centred class means.
        equiangularity: standard deviation of the cosines between distinct centred class means.
        max_angle: mean of ``|cos + 1 / (C - 1)|`` over distinct pairs (distance to the
            ETF's angles).
        etf_distance: ``|| M M^T / ||M M^T||_F - (I - 11^T / C) / ||I - 11^T / C||_F ||_F``,
            ``M`` the centred class means.
        n_classes: ``C``.
    """

    nc1: float
    equinorm: float
    equiangularity: float
    max_angle: float
    etf_distance: float
    n_classes: int

    def to_dict(self) -> dict[str, float]:
        """The six fields as ``{name: float}`` (``n_classes`` too, as a float)."""
        return {k: float(v) for k, v in asdict(self).items()}


def neural_collapse(features: Any, labels: Any) -> NeuralCollapse:
    """Neural-collapse metrics NC1 (within-class variability) and NC2 (class means form a
    simplex ETF: equal norms, equal angles ``-1 / (C - 1)``).

    ``S_W = (1/N) sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T``,
    ``S_B = (1/C) sum_c (mu_c - mu_G)(mu_c - mu_G)^T`` with ``mu_G`` the global mean.
    ``Tr(S_W S_B^+)`` is evaluated in the span of ``S_B`` without forming ``dim x dim``
    matrices.

    Every metric is scale-invariant, so the features are rescaled by a power of two first
    (1e200 or 1e-200 features give the same metrics). ``ValueError`` when all class means are
    equal (``S_B = 0``, e.g. constant features): the metrics are undefined.

    Args:
        features: ``(n_samples, dim)`` last-layer features.
        labels: ``(n_samples,)`` integer class labels, at least 2 classes.
    """
    h = check_points("features", features).astype(np.float64)
    y = check_label_vector("labels", labels, h.shape[0])
    if y.ndim != 1 or y.dtype.kind not in "iub":
        raise ValueError(f"labels must be integer class labels (n,), got {y.shape} {y.dtype}")
    classes, inv = np.unique(y, return_inverse=True)
    c = classes.size
    if c < 2:
        raise ValueError(f"neural collapse needs at least 2 classes, got {c}")
    h, _ = pow2_scale(h)
    counts = np.bincount(inv, minlength=c).astype(np.float64)
    means = np.zeros((c, h.shape[1]))
    np.add.at(means, inv, h)
    means /= counts[:, None]
    mu_g = h.mean(axis=0)
    m = means - mu_g  # (C, dim) centred class means
    within = h - means[inv]  # (N, dim)
    _, s, vt = np.linalg.svd(m, full_matrices=False)
    # class means that differ only by the rounding of the means (h is below 2 in magnitude)
    if not s.size or s[0] <= 64 * np.finfo(np.float64).eps * np.sqrt(c * h.shape[1]):
        raise ValueError(
            f"features must have class means that differ, got {c} equal class means "
            "(between-class scatter S_B = 0); neural-collapse metrics are undefined"
        )
    keep = s > s[0] * 1e-10
    # S_B = V diag(s^2 / C) V^T, so Tr(S_W S_B^+) = sum_k C / s_k^2 * v_k^T S_W v_k
    proj = within @ vt[keep].T  # (N, rank)
    sw_diag = (proj * proj).sum(axis=0) / h.shape[0]
    nc1 = float((c / s[keep] ** 2 * sw_diag).sum()) / c
    norms = np.linalg.norm(m, axis=1)
    equinorm = float(norms.std() / norms.mean())  # mean > 0: some class mean differs
    unit = m / np.maximum(norms[:, None], 1e-300)
    cos = unit @ unit.T
    off = cos[~np.eye(c, dtype=bool)]
    gram = m @ m.T
    etf = np.eye(c) - np.ones((c, c)) / c
    gnorm = float(np.linalg.norm(gram))
    etf_dist = float(np.linalg.norm(gram / gnorm - etf / np.linalg.norm(etf))) if gnorm > 0 else 1.0
    return NeuralCollapse(
        nc1=nc1,
        equinorm=equinorm,
        equiangularity=float(off.std()),
        max_angle=float(np.abs(off + 1.0 / (c - 1)).mean()),
        etf_distance=etf_dist,
        n_classes=int(c),
    )


def k_occurrence(
    x: Any, k: int = 10, *, backend: Backend = "auto", distance: Distance | None = None
) -> np.ndarray:
    """``N_k``: how many times each point is among the ``k`` nearest neighbours of the others.

    Returns ``(n_points,)`` int64 counts summing to ``n_points * k``. Ties between equidistant
    neighbours go to the lower index (see :func:`~embedlab.analysis.knn`); ``ValueError`` when
    all points are identical (every neighbour is a tie). ``distance``: neighbours under any
    embedlab :class:`~embedlab.losses.Distance` (e.g. a learned ``NeuralSnowflake``), exact;
    ``None`` (default) is Euclidean.
    """
    pts = check_points("X", x)
    k = check_int("k", k, min_value=1)
    check_distinct_points("X", pts, "the k-occurrence (every neighbour is a tie)")
    check_enough_points("X", pts.shape[0], k + 1, f"k={k} nearest neighbours (plus self)")
    _, idx = knn(pts, k, backend=backend, distance=distance)
    return np.bincount(idx.ravel(), minlength=pts.shape[0]).astype(np.int64)


def _skewness(v: np.ndarray) -> float:
    v = v.astype(np.float64)
    d = v - v.mean()
    sd = float(np.sqrt((d * d).mean()))
    return float((d**3).mean() / sd**3) if sd > 0 else 0.0


def hubness(
    x: Any, k: int = 10, *, backend: Backend = "auto", distance: Distance | None = None
) -> float:
    """Hubness: skewness of the k-occurrence distribution (Radovanović, Nanopoulos &
    Ivanović, JMLR 2010). About 0 for well-spread data; large positive values mean a few
    "hub" points appear in many neighbour lists, which hurts kNN retrieval.

    Euclidean neighbours by default; L2-normalise first for cosine, or pass any embedlab
    ``distance`` (e.g. a learned ``NeuralSnowflake``) to count neighbours under it.
    """
    return _skewness(k_occurrence(x, k, backend=backend, distance=distance))
