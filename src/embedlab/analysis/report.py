"""One call that measures an embedding space (or compares several), and its HTML page."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from embedlab._validation import (
    check_distinct_points,
    check_enough_points,
    check_int,
    check_label_vector,
    check_points,
)
from embedlab.analysis._knn import Backend, knn_scaled
from embedlab.analysis._scale import pow2_scale, unit_rows
from embedlab.analysis.dataset import label_sharpness
from embedlab.analysis.geometry import NeuralCollapse, _skewness, neural_collapse, uniformity
from embedlab.analysis.intrinsic_dim import (
    PCADims,
    TwoNNFit,
    _mle_from_distances,
    _twonn_from_distances,
    effective_rank,
    pca_dims,
    tie_tolerance,
)
from embedlab.analysis.similarity import linear_cka, rbf_cka
from embedlab.analysis.space_alignment import procrustes

__all__ = [
    "AnalysisResult",
    "ComparisonResult",
    "analyze_embeddings",
    "compare_embeddings",
    "render_analysis",
]

_MAX_PAIR_POINTS = 2000  # subsample for the O(n^2) uniformity
_MAX_KERNEL_POINTS = 3000  # subsample for the n x n RBF Gram matrices


_T = TypeVar("_T")


def _json_float(v: float | None) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _or_note(notes: list[str], what: str, compute: Callable[[], _T]) -> _T | None:
    """``compute()``, or ``None`` with a note saying why the measure is undefined here."""
    try:
        return compute()
    except ValueError as exc:
        notes.append(f"{what} undefined: {exc}")
        return None


@dataclass(frozen=True)
class AnalysisResult:
    """Every measure :func:`analyze_embeddings` could compute; ``None`` where not applicable
    or undefined on this data (``notes`` then says why)."""

    n_points: int
    dim: int
    twonn: TwoNNFit | None
    mle: float | None
    mle_k: int
    pca: PCADims
    effective_rank: float
    uniformity: float
    hubness: float
    hubness_k: int
    mean_norm: float
    neural_collapse: NeuralCollapse | None = None
    label_sharpness: float | None = None
    n_classes: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (non-finite numbers become ``null``; no per-point arrays)."""
        pca = self.pca
        return {
            "n_points": self.n_points,
            "dim": self.dim,
            "twonn": None if self.twonn is None else _json_float(self.twonn.dimension),
            "twonn_duplicates_dropped": None if self.twonn is None else self.twonn.n_duplicates,
            "twonn_ties_dropped": None if self.twonn is None else self.twonn.n_ties,
            "mle": _json_float(self.mle),
            "mle_k": self.mle_k,
            "pca_dims": {f"{t:g}": d for t, d in zip(pca.thresholds, pca.dims, strict=True)},
            "explained_variance_ratio": [
                _json_float(v) for v in pca.explained_variance_ratio[:256].tolist()
            ],
            "effective_rank": _json_float(self.effective_rank),
            "uniformity": _json_float(self.uniformity),
            "hubness": _json_float(self.hubness),
            "hubness_k": self.hubness_k,
            "mean_norm": _json_float(self.mean_norm),
            "neural_collapse": (
                None
                if self.neural_collapse is None
                else {k: _json_float(v) for k, v in self.neural_collapse.to_dict().items()}
            ),
            "label_sharpness": _json_float(self.label_sharpness),
            "n_classes": self.n_classes,
            "notes": list(self.notes),
        }


def analyze_embeddings(
    x: Any,
    labels: Any = None,
    *,
    k: int = 20,
    hubness_k: int = 10,
    seed: int = 0,
    backend: Backend = "auto",
) -> AnalysisResult:
    """Measure an embedding space: intrinsic dimension (TwoNN, MLE, PCA, effective rank),
    uniformity (on L2-normalised rows, up to 2,000 sampled points), hubness, and with
    integer class labels, neural collapse and label sharpness.

    One exact kNN search (``max(k, hubness_k)`` neighbours) serves TwoNN, MLE and hubness;
    ``k`` shrinks to ``n_points - 1`` on tiny inputs (recorded in ``notes``). A measure that is
    undefined on this data (TwoNN when every point is duplicated, neural collapse when the
    class means coincide, ...) is ``None`` with the reason in ``notes``; all points identical
    is a ``ValueError``. Scale-free measures are computed on rescaled data, so 1e200 or
    1e-200 embeddings give the answers of unit ones.

    Args:
        x: ``(n_points, dim)`` embeddings, at least 3 points.
        labels: optional ``(n_points,)`` class labels.
        seed: seed of the subsampling for uniformity and label sharpness.
    """
    pts = check_points("X", x)
    n, dim = pts.shape
    check_enough_points("X", n, 3, "TwoNN's 2 nearest neighbours (plus the point)")
    k = check_int("k", k, min_value=2)
    hubness_k = check_int("hubness_k", hubness_k, min_value=1)
    check_distinct_points("X", pts, "every measure of the analysis")
    notes: list[str] = []
    k_used = min(k, n - 1)
    hub_used = min(hubness_k, n - 1)
    if k_used < k:
        notes.append(f"only {n} points: MLE uses k={k_used} instead of {k}")
    dist, idx, _ = knn_scaled(pts, max(k_used, hub_used, 2), backend=backend)
    tol = tie_tolerance(pts)
    fit = _or_note(notes, "TwoNN", lambda: _twonn_from_distances(dist[:, 0], dist[:, 1], 0.1, tol))
    mle = _or_note(notes, "MLE", lambda: _mle_from_distances(dist, [k_used], tol))
    occ = np.bincount(idx[:, :hub_used].ravel(), minlength=n)
    rng = np.random.default_rng(seed)
    sub = pts if n <= _MAX_PAIR_POINTS else pts[rng.choice(n, _MAX_PAIR_POINTS, replace=False)]
    sub64, _ = unit_rows(sub)  # zero rows stay zero
    if n > _MAX_PAIR_POINTS:
        notes.append(f"uniformity on {_MAX_PAIR_POINTS} of {n} points (seed {seed})")
    nc: NeuralCollapse | None = None
    sharp: float | None = None
    n_classes: int | None = None
    if labels is not None:
        y = check_label_vector("labels", labels, n)
        if y.ndim == 1 and y.dtype.kind in "iub":
            n_classes = int(np.unique(y).size)
            if n_classes >= 2:
                nc = _or_note(notes, "neural collapse", lambda: neural_collapse(pts, y))
            else:
                notes.append("one class only: neural-collapse metrics skipped")
        else:
            notes.append("labels are not integer classes: neural-collapse metrics skipped")
        sharp = _or_note(notes, "label sharpness", lambda: label_sharpness(pts, y, seed=seed))
    scaled, scale = pow2_scale(pts)
    with np.errstate(over="ignore"):
        mean_norm = float(np.linalg.norm(scaled, axis=1).mean()) * float(scale)
    return AnalysisResult(
        n_points=n,
        dim=dim,
        twonn=fit,
        mle=mle,
        mle_k=k_used,
        pca=pca_dims(pts),
        effective_rank=effective_rank(pts),
        uniformity=uniformity(sub64),
        hubness=_skewness(occ),
        hubness_k=hub_used,
        mean_norm=mean_norm,
        neural_collapse=nc,
        label_sharpness=sharp,
        n_classes=n_classes,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class ComparisonResult:
    """Pairwise similarity of several embeddings of the same samples.

    Attributes:
        names: one per input.
        linear_cka, rbf_cka: ``(m, m)`` matrices.
        procrustes_error: ``(m, m)``; entry ``(i, j)`` aligns input ``i`` onto ``j``.
        twonn: TwoNN dimension of each input (``None`` where undefined; ``notes`` says why).
        n_points: samples (rows) shared by all inputs.
    """

    names: tuple[str, ...]
    linear_cka: np.ndarray
    rbf_cka: np.ndarray
    procrustes_error: np.ndarray
    twonn: tuple[float | None, ...]
    n_points: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: matrices as nested lists, non-finite numbers as ``None``."""

        def mat(m: np.ndarray) -> list[list[float | None]]:
            return [[_json_float(v) for v in row] for row in m.tolist()]

        return {
            "names": list(self.names),
            "n_points": self.n_points,
            "linear_cka": mat(self.linear_cka),
            "rbf_cka": mat(self.rbf_cka),
            "procrustes_error": mat(self.procrustes_error),
            "twonn": [_json_float(v) for v in self.twonn],
            "notes": list(self.notes),
        }


def compare_embeddings(
    spaces: Sequence[Any],
    names: Sequence[str] | None = None,
    *,
    seed: int = 0,
    backend: Backend = "auto",
) -> ComparisonResult:
    """Compare ``m >= 2`` embeddings ``(n_points, d_i)`` of the same samples pairwise:
    linear CKA, RBF CKA (median heuristic; up to 3,000 sampled rows), Procrustes error.

    ``ValueError`` naming the input when one has all rows identical (no similarity is defined
    for it); a TwoNN dimension that is undefined is ``None`` with the reason in ``notes``.
    """
    if len(spaces) < 2:
        raise ValueError(f"compare needs at least 2 embeddings, got {len(spaces)}")
    labels = list(names) if names is not None else [f"#{i}" for i in range(len(spaces))]
    if len(labels) != len(spaces):
        raise ValueError(f"names must have {len(spaces)} entries, got {len(labels)}")
    mats = [check_points(name, s, min_points=3) for name, s in zip(labels, spaces, strict=True)]
    for name, m_ in zip(labels, mats, strict=True):
        check_distinct_points(name, m_, "its similarity to the other embeddings")
    n = mats[0].shape[0]
    for name, m_ in zip(labels[1:], mats[1:], strict=True):
        if m_.shape[0] != n:
            raise ValueError(
                f"all embeddings must have the same number of rows (paired samples): "
                f"{labels[0]} has {n}, {name} has {m_.shape[0]}"
            )
    notes: list[str] = []
    rng = np.random.default_rng(seed)
    sub = rng.choice(n, _MAX_KERNEL_POINTS, replace=False) if n > _MAX_KERNEL_POINTS else None
    if sub is not None:
        notes.append(f"RBF CKA on {_MAX_KERNEL_POINTS} of {n} rows (seed {seed})")
    m = len(mats)
    lin, rbf, err = np.ones((m, m)), np.ones((m, m)), np.zeros((m, m))
    for i in range(m):
        for j in range(m):
            if i < j:
                lin[i, j] = lin[j, i] = linear_cka(mats[i], mats[j])
                a, b = (mats[i], mats[j]) if sub is None else (mats[i][sub], mats[j][sub])
                rbf[i, j] = rbf[j, i] = rbf_cka(a, b)
            if i != j:
                err[i, j] = procrustes(mats[i], mats[j]).error
    dims: list[float | None] = []
    for name, s in zip(labels, mats, strict=True):
        d2 = knn_scaled(s, 2, backend=backend)[0]
        fit = _or_note(
            notes,
            f"TwoNN of {name}",
            lambda: _twonn_from_distances(d2[:, 0], d2[:, 1], 0.1, tie_tolerance(s)),  # noqa: B023
        )
        dims.append(None if fit is None else fit.dimension)
    return ComparisonResult(tuple(labels), lin, rbf, err, tuple(dims), n, tuple(notes))


def render_analysis(
    result: AnalysisResult | ComparisonResult,
    out_dir: str | os.PathLike[str],
    *,
    title: str = "embedlab analysis",
) -> Path:
    """Write ``out_dir/index.html`` (self-contained, inline SVG, atomic); return its path."""
    from embedlab.analysis._report_html import render_page

    return render_page(result, out_dir, title=title)
