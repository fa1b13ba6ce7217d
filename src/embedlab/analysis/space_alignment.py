"""Post-hoc alignment of two embedding spaces of the same samples.

Orthogonal Procrustes, CCA, both optionally on top-``dim`` PCA subspaces ("Escaping Plato's
Cave", 2025), and mean-centring modality alignment (inference-time image/text alignment).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from embedlab._validation import (
    check_bool,
    check_choice,
    check_distinct_points,
    check_int,
    check_points,
    check_same_rows,
)
from embedlab.analysis._scale import pow2_scale, unit_rows

__all__ = [
    "CCAResult",
    "ProcrustesResult",
    "SubspaceAlignment",
    "cca_align",
    "mean_center_align",
    "procrustes",
    "subspace_align",
]


def _ratio(num: float, den: float, what: str) -> float:
    """``num / den`` for powers of two (or scales); ``ValueError`` beyond float64's range."""
    log_value = math.log(num) - math.log(den)
    if abs(log_value) > math.log(np.finfo(np.float64).max):
        raise ValueError(
            f"{what} is about 1e{log_value / math.log(10):.0f}, beyond float64's range: X and Y "
            "differ too much in scale"
        )
    return num / den


def _pair(x: Any, y: Any, min_points: int = 2) -> tuple[np.ndarray, np.ndarray]:
    a = check_points("X", x, min_points=min_points).astype(np.float64)
    b = check_points("Y", y, min_points=min_points).astype(np.float64)
    check_same_rows("X", a.shape[0], "Y", b.shape[0])
    return a, b


@dataclass(frozen=True)
class ProcrustesResult:
    """``scale * (X - x_mean) @ rotation ~ Y - y_mean``.

    Attributes:
        rotation: ``(d_x, d_y)`` with orthonormal rows or columns (orthogonal when square).
        scale: the isotropic scale (1 when ``scaling=False``).
        error: residual ``||scale X R - Y||_F / ||Y||_F`` on the (centred) data.
        x_mean, y_mean: the means removed (zeros when ``center=False``).
    """

    rotation: np.ndarray
    scale: float
    error: float
    x_mean: np.ndarray
    y_mean: np.ndarray

    def transform(self, x: Any) -> np.ndarray:
        """Map points of space ``X`` into space ``Y``: ``(n, d_x) -> (n, d_y)``."""
        a = check_points("X", x).astype(np.float64)
        return np.asarray(self.scale * (a - self.x_mean) @ self.rotation + self.y_mean)


def procrustes(x: Any, y: Any, *, center: bool = True, scaling: bool = True) -> ProcrustesResult:
    """Orthogonal Procrustes (Schönemann 1966): the rotation ``R`` minimising ``||s X R - Y||_F``.

    ``R = U V^T`` from the SVD ``X^T Y = U S V^T``; ``s = trace(S) / ||X||_F^2``. Each side is
    rescaled by a power of two first (exact), so 1e200 or 1e-200 data fit as well as unit
    data. ``ValueError`` when ``X`` or ``Y`` has no variation (all rows equal, or all zero
    with ``center=False``): the rotation is undefined.

    Args:
        x: ``(n_samples, d_x)``.
        y: ``(n_samples, d_y)``; when ``d_x != d_y``, ``R`` is ``(d_x, d_y)`` semi-orthogonal.
        center: remove each side's mean first.
        scaling: also fit the isotropic scale ``s``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a, (q, _) = rng.normal(size=(50, 4)), np.linalg.qr(rng.normal(size=(4, 4)))
        >>> fit = procrustes(a, 2 * a @ q)
        >>> bool(np.allclose(fit.rotation, q)), round(fit.scale, 6)
        (True, 2.0)
    """
    a, b = _pair(x, y)
    center = check_bool("center", center)
    scaling = check_bool("scaling", scaling)
    for name, m in (("X", a), ("Y", b)):
        if bool((m == (m[0] if center else 0.0)).all()):
            raise ValueError(
                f"{name} must vary for a Procrustes fit, got all rows "
                f"{'equal' if center else 'zero'}; the rotation is undefined"
            )
    (a, sa), (b, sb) = pow2_scale(a), pow2_scale(b)
    mx = a.mean(axis=0) if center else np.zeros(a.shape[1])
    my = b.mean(axis=0) if center else np.zeros(b.shape[1])
    a, b = a - mx, b - my
    u, s, vt = np.linalg.svd(a.T @ b, full_matrices=False)
    r = u @ vt
    # in the rescaled units: X = sa * a, Y = sb * b, so a scale c here is c * sb / sa in X's
    if scaling:
        c = float(s.sum()) / float((a * a).sum())
        scale = _ratio(c * float(sb), float(sa), "the Procrustes scale")
    else:
        scale = 1.0
        c = _ratio(float(sa), float(sb), "the Procrustes error (scaling=False)")
    error = float(np.linalg.norm(c * a @ r - b)) / float(np.linalg.norm(b))
    return ProcrustesResult(r, scale, error, mx * sa, my * sb)


@dataclass(frozen=True)
class CCAResult:
    """Canonical correlation analysis of two views.

    Attributes:
        x_weights: ``(d_x, c)``; ``(X - x_mean) @ x_weights`` are the canonical variates of X
            (unit variance, uncorrelated).
        y_weights: ``(d_y, c)``.
        correlations: ``(c,)`` canonical correlations, largest first.
        x_mean, y_mean: the means removed.
    """

    x_weights: np.ndarray
    y_weights: np.ndarray
    correlations: np.ndarray
    x_mean: np.ndarray
    y_mean: np.ndarray

    def transform_x(self, x: Any) -> np.ndarray:
        """Canonical variates ``(n, c)`` of ``x`` ``(n, d_x)``: ``(x - x_mean) @ x_weights``."""
        return np.asarray((check_points("X", x) - self.x_mean) @ self.x_weights)

    def transform_y(self, y: Any) -> np.ndarray:
        """Canonical variates ``(n, c)`` of ``y`` ``(n, d_y)``: ``(y - y_mean) @ y_weights``."""
        return np.asarray((check_points("Y", y) - self.y_mean) @ self.y_weights)


def _whiten(a: np.ndarray, reg: float) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis ``U`` of the column space of ``a`` and ``W`` with ``a W = U * sqrt(n)``."""
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    keep = s > s[0] * 1e-10 if s.size and s[0] > 0 else np.zeros_like(s, dtype=bool)
    u, s, vt = u[:, keep], s[keep], vt[keep]
    n = a.shape[0]
    # regularised inverse square root of the covariance, in the basis of a's singular vectors
    inv = 1.0 / np.sqrt(s * s / n + reg)
    return u * (s * inv / np.sqrt(n)), vt.T * inv


def cca_align(x: Any, y: Any, n_components: int, *, reg: float = 0.0) -> CCAResult:
    """CCA (Hotelling 1936) by SVD of the whitened cross-covariance.

    Args:
        x: ``(n_samples, d_x)``.
        y: ``(n_samples, d_y)``.
        n_components: canonical pairs to keep, ``<= min(rank X, rank Y)``.
        reg: ridge added to each covariance's eigenvalues (0 = plain CCA), in the units of
            the data's covariance.

    Each side is rescaled by a power of two first (exact), so 1e200 or 1e-200 data give the
    same correlations as unit data. ``ValueError`` when all rows of ``X`` or of ``Y`` are
    equal (rank 0).
    """
    a, b = _pair(x, y, min_points=2)
    n_components = check_int("n_components", n_components, min_value=1)
    if reg < 0:
        raise ValueError(f"reg must be >= 0, got {reg}")
    check_distinct_points("X", a, "CCA (X has rank 0)")
    check_distinct_points("Y", b, "CCA (Y has rank 0)")
    (a, sa), (b, sb) = pow2_scale(a), pow2_scale(b)
    mx, my = a.mean(axis=0), b.mean(axis=0)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        # the ridge in the rescaled units (inf when it dominates: the correlations go to 0)
        reg_a, reg_b = (0.0, 0.0) if reg == 0 else (reg / sa / sa, reg / sb / sb)
    ua, wa = _whiten(a - mx, float(reg_a))
    ub, wb = _whiten(b - my, float(reg_b))
    max_c = min(ua.shape[1], ub.shape[1])
    if n_components > max_c:
        raise ValueError(
            f"n_components must be <= min(rank X, rank Y) = {max_c} (rank X = {ua.shape[1]}, "
            f"rank Y = {ub.shape[1]}), got {n_components}"
        )
    # ua.T @ ub is the cross-covariance of the whitened views (unit-variance columns
    # ua * sqrt(n)); its singular values are the canonical correlations
    p, s, qt = np.linalg.svd(ua.T @ ub, full_matrices=False)
    corr = np.clip(s[:n_components], -1.0, 1.0)
    x_weights = wa @ p[:, :n_components] / sa  # (X - mx) @ w = (a - mx_a) @ (sa * w)
    y_weights = wb @ qt.T[:, :n_components] / sb
    return CCAResult(x_weights, y_weights, corr, mx * sa, my * sb)


@dataclass(frozen=True)
class SubspaceAlignment:
    """Two spaces projected on their top-``dim`` PCA subspaces, then aligned.

    Attributes:
        x_aligned: ``(n_samples, dim)`` X in the shared coordinates.
        y_aligned: ``(n_samples, dim)`` Y in the shared coordinates.
        score: Procrustes: ``1 - error``; CCA: mean canonical correlation.
        method: ``"procrustes"`` or ``"cca"``.
        x_basis, y_basis: ``(d, dim)`` PCA bases.
    """

    x_aligned: np.ndarray
    y_aligned: np.ndarray
    score: float
    method: str
    x_basis: np.ndarray
    y_basis: np.ndarray


def _pca_basis(a: np.ndarray, dim: int) -> np.ndarray:
    _, _, vt = np.linalg.svd(a, full_matrices=False)
    return np.asarray(vt[:dim].T)


def subspace_align(
    x: Any, y: Any, dim: int, *, method: Literal["procrustes", "cca"] = "procrustes"
) -> SubspaceAlignment:
    """Align two spaces after projecting each onto its top-``dim`` principal subspace.

    "Escaping Plato's Cave" (2025): post-hoc alignment improves when both spaces are first
    reduced to well-chosen low-dimensional subspaces, which drops directions that carry
    model-specific noise. Then orthogonal Procrustes (X onto Y) or CCA.

    Args:
        x: ``(n_samples, d_x)``.
        y: ``(n_samples, d_y)``.
        dim: subspace dimension, ``<= min(n_samples, d_x, d_y)``.
        method: ``"procrustes"`` or ``"cca"``.

    Each side is rescaled by a power of two first (exact; 1e200 or 1e-200 data align as unit
    data do). ``ValueError`` when all rows of ``X`` or of ``Y`` are equal.
    """
    a, b = _pair(x, y)
    method_s = check_choice("method", method, ("procrustes", "cca"))
    dim = check_int("dim", dim, min_value=1)
    limit = min(a.shape[0], a.shape[1], b.shape[1])
    if dim > limit:
        raise ValueError(f"dim must be <= min(n_samples, d_x, d_y) = {limit}, got {dim}")
    check_distinct_points("X", a, "the subspace alignment")
    check_distinct_points("Y", b, "the subspace alignment")
    (a, sa), (b, sb) = pow2_scale(a), pow2_scale(b)  # exact; the SVDs see unit-scale data
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    ba, bb = _pca_basis(a, dim), _pca_basis(b, dim)
    pa, pb = (a @ ba) * sa, (b @ bb) * sb  # (n, dim) each, in the data's units
    if method_s == "procrustes":
        fit = procrustes(pa, pb, center=False)
        return SubspaceAlignment(
            fit.scale * pa @ fit.rotation, pb, 1.0 - fit.error, "procrustes", ba, bb
        )
    cca = cca_align(pa, pb, dim)
    xa, ya = cca.transform_x(pa), cca.transform_y(pb)
    return SubspaceAlignment(xa, ya, float(cca.correlations.mean()), "cca", ba, bb)


def mean_center_align(
    x: Any,
    y: Any,
    *,
    normalize: bool = True,
    x_mean: np.ndarray | None = None,
    y_mean: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Modality alignment by mean-centring: subtract each space's mean (then re-normalise).

    Embeddings of two modalities (image / text) occupy two separate cones ("modality gap");
    removing each modality's mean moves both around the origin so cosine similarities
    across modalities become comparable, with no training (inference-time alignment).
    ``X`` and ``Y`` need not hold the same samples, only the same ``dim``. Pass means
    computed on reference data to apply the same shift to new queries. Works at any
    magnitude (1e200, 1e-200); a row equal to the mean has no direction and stays zero under
    ``normalize``, with a ``UserWarning`` that counts such rows.

    Returns:
        ``(x_aligned (n_x, dim), y_aligned (n_y, dim))``, unit rows when ``normalize``.
    """
    a = check_points("X", x).astype(np.float64)
    b = check_points("Y", y).astype(np.float64)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"X and Y must have the same dim, got {a.shape[1]} and {b.shape[1]}")
    normalize = check_bool("normalize", normalize)
    out = []
    for name, m, mean in (("X", a, x_mean), ("Y", b, y_mean)):
        if mean is None:
            m_s, s = pow2_scale(m)
            c, scale = m_s - m_s.mean(axis=0), float(s)
        else:
            c, scale = m - np.asarray(mean, dtype=np.float64), 1.0
        if not normalize:
            out.append(c * scale)
            continue
        unit, zero = unit_rows(c)
        if zero.any():
            warnings.warn(
                f"mean_center_align: {int(zero.sum())} of {m.shape[0]} rows of {name} equal "
                "the mean; they have no direction and stay zero",
                UserWarning,
                stacklevel=2,
            )
        out.append(unit)
    return out[0], out[1]
