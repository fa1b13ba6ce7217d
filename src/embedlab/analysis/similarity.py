"""Similarity of two representations of the same samples: CKA, relative representations,
convergent-learning unit matching.

``X`` is ``(n_samples, d_x)`` and ``Y`` is ``(n_samples, d_y)``: row ``i`` of both describes
the same input, seen by two models (or two layers).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from embedlab._validation import (
    check_int,
    check_points,
    check_positive_float,
    check_same_rows,
)
from embedlab.analysis._scale import pow2_scale, unit_rows

__all__ = [
    "SparseUnitMatch",
    "UnitMatch",
    "linear_cka",
    "match_units",
    "rbf_cka",
    "relative_projection",
    "sparse_match_units",
    "stitch",
    "unit_correlation",
]


def _pair(x: Any, y: Any, *, min_points: int = 2) -> tuple[np.ndarray, np.ndarray]:
    a = check_points("X", x, min_points=min_points).astype(np.float64)
    b = check_points("Y", y, min_points=min_points).astype(np.float64)
    check_same_rows("X", a.shape[0], "Y", b.shape[0])
    return a, b


def _check_varies(name: str, a: np.ndarray) -> None:
    if bool((a == a[0]).all()):
        raise ValueError(
            f"CKA is undefined when X or Y has zero variance: {name} has {a.shape[0]} "
            "identical rows"
        )


def _standard_units(name: str, a: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Columns of ``a`` centred and scaled to unit norm at any magnitude; constant columns
    become 0 (with a ``UserWarning`` that says ``what`` that means). Returns ``(units, constant)``.
    """
    scaled, _ = pow2_scale(a, axis=0)  # per column: exact, keeps correlations
    centred = scaled - scaled.mean(axis=0)
    norms = np.linalg.norm(centred, axis=0)
    constant = norms == 0
    if constant.any():
        warnings.warn(
            f"{int(constant.sum())} of {a.shape[1]} units of {name} have zero variance; {what}",
            UserWarning,
            stacklevel=3,
        )
    return centred / np.where(constant, 1.0, norms), constant


def _center_gram(k: np.ndarray) -> np.ndarray:
    """``H K H`` with ``H = I - 11^T / n``."""
    k = k - k.mean(axis=0, keepdims=True)
    return np.asarray(k - k.mean(axis=1, keepdims=True))


def _unbiased_hsic(k: np.ndarray, l_: np.ndarray) -> float:
    """Unbiased HSIC estimator of Song et al. (2012) (up to a constant factor that cancels)."""
    n = k.shape[0]
    k = k.copy()
    l_ = l_.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l_, 0.0)
    ks, ls = k.sum(axis=0), l_.sum(axis=0)
    term = float((k * l_).sum()) + float(ks.sum() * ls.sum()) / ((n - 1) * (n - 2))
    term -= 2.0 * float(ks @ ls) / (n - 2)
    return float(term / (n * (n - 3)))


def _cka_from_grams(k: np.ndarray, l_: np.ndarray, debiased: bool) -> float:
    if debiased:
        xy, xx, yy = _unbiased_hsic(k, l_), _unbiased_hsic(k, k), _unbiased_hsic(l_, l_)
    else:
        kc, lc = _center_gram(k), _center_gram(l_)
        xy, xx, yy = float((kc * lc).sum()), float((kc * kc).sum()), float((lc * lc).sum())
    if xx <= 0.0 or yy <= 0.0:
        raise ValueError("CKA is undefined when X or Y has zero variance (constant rows)")
    return xy / float(np.sqrt(xx * yy))


def linear_cka(x: Any, y: Any, *, debiased: bool = False) -> float:
    """Linear centred kernel alignment (Kornblith, Norouzi, Lee & Hinton, ICML 2019).

    ``||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F)`` on column-centred features.
    Invariant to orthogonal transforms and isotropic scaling of either side; 1 on identical
    inputs. ``debiased`` uses the unbiased HSIC estimator (Song et al. 2012; needs >= 4
    samples and forms the ``n x n`` Gram matrices). Each side is normalised to unit Frobenius
    norm first (harmless by the scale invariance), so 1e200 or 1e-200 data neither overflow nor
    underflow. ``ValueError`` when all rows of ``X`` or of ``Y`` are equal.

    Args:
        x: ``(n_samples, d_x)``.
        y: ``(n_samples, d_y)``.

    Example:
        >>> a = np.random.default_rng(0).normal(size=(100, 8))
        >>> round(linear_cka(a, 3 * a), 6)
        1.0
    """
    a, b = _pair(x, y, min_points=4 if debiased else 2)
    _check_varies("X", a)
    _check_varies("Y", b)
    a, b = pow2_scale(a)[0], pow2_scale(b)[0]
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    if debiased:
        return _cka_from_grams(a @ a.T, b @ b.T, debiased=True)
    xy = float(np.linalg.norm(b.T @ a) ** 2)
    xx = float(np.linalg.norm(a.T @ a))
    yy = float(np.linalg.norm(b.T @ b))
    if xx <= 0.0 or yy <= 0.0:
        raise ValueError("CKA is undefined when X or Y has zero variance (constant rows)")
    return xy / (xx * yy)


def _rbf_gram(name: str, a: np.ndarray, sigma: float | None) -> np.ndarray:
    scaled, s = pow2_scale(a)
    scaled = scaled - scaled.mean(axis=0)
    sq = (scaled * scaled).sum(axis=1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2.0 * scaled @ scaled.T, 0.0, None)  # / s**2
    if sigma is None:
        med = float(np.median(d2))  # Kornblith et al.'s median heuristic (threshold 1)
        if med == 0.0:
            med = float(np.median(d2[d2 > 0]))
            warnings.warn(
                f"rbf_cka: more than half of the pairs of rows of {name} are equal (median "
                "squared distance 0); sigma^2 is the median of the non-zero squared distances",
                UserWarning,
                stacklevel=3,
            )
        return np.asarray(np.exp(-d2 / (2.0 * med)))
    # d2 * s**2 / (2 sigma^2), where s**2 alone may overflow or underflow
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        factor = np.float64(s) ** 2 / (2.0 * sigma * sigma)
        e = np.zeros_like(d2)  # identical rows: kernel 1 (0 * inf would be NaN)
        pos = d2 > 0
        e[pos] = d2[pos] * factor
        return np.asarray(np.exp(-e))


def rbf_cka(x: Any, y: Any, *, sigma: float | None = None, debiased: bool = False) -> float:
    """Kernel CKA with Gaussian kernels ``exp(-||a - b||^2 / (2 sigma^2))`` (Kornblith 2019).

    ``sigma=None`` takes ``sigma^2`` = the median squared distance between samples, separately
    for ``X`` and ``Y`` (their median heuristic), which makes the value invariant to isotropic
    scaling; when more than half of the pairs are duplicates (median 0) it is the median of
    the non-zero squared distances, with a ``UserWarning``. Distances are computed on data
    rescaled by a power of two, so 1e200 or 1e-200 data neither overflow nor underflow.
    ``ValueError`` when all rows of ``X`` or of ``Y`` are equal. Forms ``n x n`` Gram matrices:
    subsample beyond ~10k samples.

    Args:
        x: ``(n_samples, d_x)``.
        y: ``(n_samples, d_y)``.
        sigma: fixed bandwidth for both sides, ``> 0``; ``None`` for the median heuristic.
    """
    a, b = _pair(x, y, min_points=4 if debiased else 2)
    s = None if sigma is None else check_positive_float("sigma", sigma)
    _check_varies("X", a)
    _check_varies("Y", b)
    return _cka_from_grams(_rbf_gram("X", a, s), _rbf_gram("Y", b, s), debiased)


def relative_projection(x: Any, anchors: Any) -> np.ndarray:
    """Relative representation: cosine similarity of every sample to every anchor.

    Moschella et al., "Relative representations enable zero-shot latent space
    communication", ICLR 2023. Invariant to rotations, reflections and rescaling of the
    space (the anchors must be embedded by the same encoder as ``x``).

    Args:
        x: ``(n_samples, dim)`` embeddings.
        anchors: ``(n_anchors, dim)`` embeddings of the anchor samples.

    Returns:
        ``(n_samples, n_anchors)`` float64 cosines; a zero row (of ``x`` or of ``anchors``)
        has cosine 0 with everything. Rows are normalised at any magnitude (1e200, 1e-200).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> z, a = rng.normal(size=(5, 4)), rng.normal(size=(3, 4))
        >>> q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
        >>> np.allclose(relative_projection(z, a), relative_projection(2 * z @ q, 2 * a @ q))
        True
    """
    z = check_points("X", x).astype(np.float64)
    a = check_points("anchors", anchors).astype(np.float64)
    if a.shape[1] != z.shape[1]:
        raise ValueError(f"anchors must have the same dim as X ({z.shape[1]}), got shape {a.shape}")
    return np.asarray(unit_rows(z)[0] @ unit_rows(a)[0].T)


def stitch(x: Any, anchors: Any, head: torch.nn.Module, *, batch_size: int = 4096) -> np.ndarray:
    """Zero-shot stitching: feed encoder A's relative representation to a head trained on B's.

    ``x`` and ``anchors`` are embedded by encoder A; ``head`` was trained on relative
    representations of encoder B (with the same anchor samples embedded by B). Returns the
    head's outputs ``(n_samples, n_out)`` (e.g. class logits) as numpy.
    """
    rel = relative_projection(x, anchors).astype(np.float32)
    batch_size = check_int("batch_size", batch_size, min_value=1)
    param = next(head.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    was_training = head.training
    head.eval()
    outs: list[np.ndarray] = []
    try:
        with torch.no_grad():
            for start in range(0, rel.shape[0], batch_size):
                chunk = torch.from_numpy(rel[start : start + batch_size]).to(device, dtype)
                outs.append(head(chunk).detach().cpu().numpy())
    finally:
        head.train(was_training)
    return np.concatenate(outs, axis=0)


def unit_correlation(x: Any, y: Any) -> np.ndarray:
    """Pearson correlation between every unit of ``X`` and every unit of ``Y``: ``(d_x, d_y)``.

    Units with zero variance (correlation undefined) get correlation 0, with a ``UserWarning``
    that counts them. Each unit is rescaled by a power of two first, so units at 1e200 or
    1e-200 give their true correlations.
    """
    a, b = _pair(x, y)
    a, _ = _standard_units("X", a, "their correlations are set to 0")
    b, _ = _standard_units("Y", b, "their correlations are set to 0")
    return np.asarray(a.T @ b)


@dataclass(frozen=True)
class UnitMatch:
    """One-to-one matching of units (Li, Yosinski, Clune, Lipson & Hopcroft 2015).

    Attributes:
        correlation: ``(d_x, d_y)`` unit correlations.
        x_units: ``(m,)`` matched units of ``X`` (``m = min(d_x, d_y)``), increasing.
        y_units: ``(m,)`` the unit of ``Y`` each is matched to.
        matched_correlation: ``(m,)`` their correlations.
    """

    correlation: np.ndarray
    x_units: np.ndarray
    y_units: np.ndarray
    matched_correlation: np.ndarray

    @property
    def mean_correlation(self) -> float:
        """Mean of ``matched_correlation`` over the ``m`` matched pairs."""
        return float(self.matched_correlation.mean())


def match_units(x: Any, y: Any) -> UnitMatch:
    """Convergent learning's one-to-one bipartite matching of units by correlation.

    Maximises the summed correlation over one-to-one pairs with the Hungarian algorithm
    (``scipy.optimize.linear_sum_assignment``), the "bipartite semi-matching"'s exact
    counterpart in Li et al. 2015.

    Example:
        >>> a = np.random.default_rng(0).normal(size=(200, 6))
        >>> match_units(a, a[:, [2, 0, 1, 5, 4, 3]]).y_units.tolist()
        [1, 2, 0, 5, 4, 3]
    """
    from scipy.optimize import linear_sum_assignment

    corr = unit_correlation(x, y)
    rows, cols = linear_sum_assignment(corr, maximize=True)
    return UnitMatch(
        corr, rows.astype(np.int64), cols.astype(np.int64), np.asarray(corr[rows, cols])
    )


@dataclass(frozen=True)
class SparseUnitMatch:
    """Few-to-one prediction of each unit of ``Y`` from a sparse set of units of ``X``.

    Attributes:
        weights: ``(d_x, d_y)`` LASSO coefficients on standardised units.
        r2: ``(d_y,)`` fraction of each ``Y`` unit's variance explained.
        n_active: ``(d_y,)`` number of ``X`` units with a non-zero weight.
    """

    weights: np.ndarray
    r2: np.ndarray
    n_active: np.ndarray


def sparse_match_units(x: Any, y: Any, *, alpha: float = 0.05) -> SparseUnitMatch:
    """Sparse few-to-one mapping (Li et al. 2015): LASSO from all units of ``X`` to each of ``Y``.

    Both sides are standardised per unit first (at any magnitude); ``alpha`` is scikit-learn's
    ``Lasso`` penalty. A constant unit of ``X`` gets weight 0; a constant unit of ``Y`` is
    predicted exactly and gets ``r2 = 1`` (scikit-learn's ``r2_score`` convention); each case
    warns with a count.
    """
    from sklearn.linear_model import Lasso

    a, b = _pair(x, y)
    alpha = check_positive_float("alpha", alpha)

    n = a.shape[0]
    # unit-norm columns times sqrt(n): unit standard deviation, as Lasso's alpha expects
    a = _standard_units("X", a, "they get weight 0")[0] * np.sqrt(n)
    b = _standard_units("Y", b, "they are predicted exactly (r2 = 1)")[0] * np.sqrt(n)
    model = Lasso(alpha=alpha, fit_intercept=False, max_iter=5000)
    model.fit(a, b)
    w = np.asarray(model.coef_, dtype=np.float64).reshape(b.shape[1], a.shape[1]).T
    resid = b - a @ w
    var = (b * b).sum(axis=0)
    r2 = 1.0 - (resid * resid).sum(axis=0) / np.where(var > 0, var, 1.0)
    return SparseUnitMatch(w, r2, (np.abs(w) > 0).sum(axis=0).astype(np.int64))
