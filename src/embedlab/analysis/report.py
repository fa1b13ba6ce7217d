"""One call that measures an embedding space (or compares several), and its HTML page."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from embedlab._io import atomic_write_text
from embedlab._validation import check_enough_points, check_int, check_label_vector, check_points
from embedlab.analysis._knn import Backend, knn
from embedlab.analysis.dataset import label_sharpness
from embedlab.analysis.geometry import NeuralCollapse, _skewness, neural_collapse, uniformity
from embedlab.analysis.intrinsic_dim import (
    PCADims,
    TwoNNFit,
    _mle_from_distances,
    _twonn_from_distances,
    effective_rank,
    pca_dims,
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


def _json_float(v: float | None) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


@dataclass(frozen=True)
class AnalysisResult:
    """Every measure :func:`analyze_embeddings` could compute; ``None`` where not applicable."""

    n_points: int
    dim: int
    twonn: TwoNNFit
    mle: float
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
            "twonn": _json_float(self.twonn.dimension),
            "twonn_duplicates_dropped": self.twonn.n_duplicates,
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
    ``k`` shrinks to ``n_points - 1`` on tiny inputs (recorded in ``notes``).

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
    notes: list[str] = []
    k_used = min(k, n - 1)
    hub_used = min(hubness_k, n - 1)
    if k_used < k:
        notes.append(f"only {n} points: MLE uses k={k_used} instead of {k}")
    dist, idx = knn(pts, max(k_used, hub_used, 2), backend=backend)
    fit = _twonn_from_distances(dist[:, 0], dist[:, 1], 0.1)
    mle = _mle_from_distances(dist, [k_used])
    occ = np.bincount(idx[:, :hub_used].ravel(), minlength=n)
    rng = np.random.default_rng(seed)
    sub = pts if n <= _MAX_PAIR_POINTS else pts[rng.choice(n, _MAX_PAIR_POINTS, replace=False)]
    sub64 = sub.astype(np.float64)
    sub64 = sub64 / np.maximum(np.linalg.norm(sub64, axis=1, keepdims=True), 1e-12)
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
                nc = neural_collapse(pts, y)
            else:
                notes.append("one class only: neural-collapse metrics skipped")
        else:
            notes.append("labels are not integer classes: neural-collapse metrics skipped")
        sharp = label_sharpness(pts, y, seed=seed)
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
        mean_norm=float(np.linalg.norm(pts.astype(np.float64), axis=1).mean()),
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
        twonn: TwoNN dimension of each input.
        n_points: samples (rows) shared by all inputs.
    """

    names: tuple[str, ...]
    linear_cka: np.ndarray
    rbf_cka: np.ndarray
    procrustes_error: np.ndarray
    twonn: tuple[float, ...]
    n_points: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
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
    """
    if len(spaces) < 2:
        raise ValueError(f"compare needs at least 2 embeddings, got {len(spaces)}")
    labels = list(names) if names is not None else [f"#{i}" for i in range(len(spaces))]
    if len(labels) != len(spaces):
        raise ValueError(f"names must have {len(spaces)} entries, got {len(labels)}")
    mats = [check_points(name, s, min_points=3) for name, s in zip(labels, spaces, strict=True)]
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
    dims = []
    for s in mats:
        d2 = knn(s, 2, backend=backend)[0]
        dims.append(_twonn_from_distances(d2[:, 0], d2[:, 1], 0.1).dimension)
    return ComparisonResult(tuple(labels), lin, rbf, err, tuple(dims), n, tuple(notes))


# ---------------------------------------------------------------- HTML page

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;
margin:0;background:#f6f7f9;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:0 0 8px}
.meta{color:#555;font-size:14px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:18px 20px;
margin:0 0 22px}
.figure{overflow-x:auto;margin:8px 0}.figure svg{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:13px}
th,td{padding:4px 8px;border-bottom:1px solid #e6e6e6;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#666;font-size:13px}
"""


def _fmt(v: float | None, digits: int = 3) -> str:
    if v is None or not math.isfinite(v):
        return "—"
    return f"{v:.{digits}f}"


def _table(rows: Sequence[tuple[str, str, str]]) -> str:
    body = "".join(
        f'<tr><td>{escape(a)}</td><td class="num">{escape(b)}</td><td>{escape(c)}</td></tr>'
        for a, b, c in rows
    )
    return (
        f"<table><thead><tr><th>measure</th><th>value</th><th>meaning</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _twonn_svg(fit: TwoNNFit) -> str:
    from embedlab.report._svg_basic import XYSeries, xy_plot_svg

    x, y = fit.log_mu, fit.neg_log_survival
    if x.size > 1500:  # keep the page small: evenly spaced points along the sorted fit
        pick = np.linspace(0, x.size - 1, 1500).astype(np.int64)
        x, y = x[pick], y[pick]
    x_max = float(fit.log_mu.max()) if fit.log_mu.size else 1.0
    return xy_plot_svg(
        [
            XYSeries("points (kept 90%)", x.tolist(), y.tolist(), "scatter", "#0072B2"),
            XYSeries(
                f"fit: slope d = {fit.dimension:.2f}",
                [0.0, x_max],
                [0.0, fit.dimension * x_max],
                "line",
                "#D55E00",
            ),
        ],
        x_label="log(r2 / r1)",
        y_label="-log(1 - F)",
        title="TwoNN: neighbour-ratio fit",
    )


def _pca_svg(pca: PCADims) -> str:
    from embedlab.report._svg_basic import XYSeries, xy_plot_svg

    cum = pca.cumulative
    comps = np.arange(1, cum.size + 1, dtype=np.float64)
    return xy_plot_svg(
        [XYSeries("cumulative explained variance", comps.tolist(), cum.tolist(), "line")],
        x_label="principal components",
        y_label="explained variance (cumulative)",
        title="PCA: explained variance",
    )


def _analysis_body(r: AnalysisResult) -> str:
    rows = [
        ("points × dim", f"{r.n_points:,} × {r.dim:,}", "rows and columns given"),
        ("TwoNN", _fmt(r.twonn.dimension, 2), "intrinsic dimension (Facco et al. 2017)"),
        (f"MLE (k={r.mle_k})", _fmt(r.mle, 2), "Levina–Bickel, harmonic mean"),
        ("effective rank", _fmt(r.effective_rank, 2), "exp entropy of singular values"),
    ]
    rows += [
        (f"PCA dims @ {t:g}", str(d), "components explaining this fraction of variance")
        for t, d in zip(r.pca.thresholds, r.pca.dims, strict=True)
    ]
    rows += [
        ("uniformity", _fmt(r.uniformity), "log E exp(-2‖x−y‖²) on unit rows; lower = spread"),
        (f"hubness (k={r.hubness_k})", _fmt(r.hubness), "skewness of k-occurrence; ~0 = no hubs"),
        ("mean norm", _fmt(r.mean_norm), "average ‖x‖"),
    ]
    if r.twonn.n_duplicates:
        rows.append(("duplicates dropped", str(r.twonn.n_duplicates), "r1 = 0 in TwoNN"))
    if r.neural_collapse is not None:
        nc = r.neural_collapse
        rows += [
            ("classes", str(nc.n_classes), ""),
            ("NC1", _fmt(nc.nc1), "Tr(S_W S_B⁺)/C; 0 = collapsed classes"),
            ("equinorm", _fmt(nc.equinorm), "CV of class-mean norms; 0 = equal"),
            ("equiangularity", _fmt(nc.equiangularity), "std of class-mean cosines"),
            ("ETF distance", _fmt(nc.etf_distance), "0 = class means form a simplex ETF"),
        ]
    if r.label_sharpness is not None:
        rows.append(("label sharpness K_F", _fmt(r.label_sharpness), "max ‖Δy‖/‖Δx‖ over pairs"))
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in r.notes)
    return (
        f"<section><h2>Measures</h2>{_table(rows)}{notes}</section>"
        f'<section><h2>Intrinsic dimension</h2><div class="figure">{_twonn_svg(r.twonn)}</div>'
        f'<div class="figure">{_pca_svg(r.pca)}</div></section>'
    )


def _comparison_body(r: ComparisonResult) -> str:
    from embedlab.report._svg_basic import heatmap_svg

    names = list(r.names)
    rows = [("rows (paired samples)", f"{r.n_points:,}", "")]
    rows += [
        (f"TwoNN {n}", _fmt(d, 2), "intrinsic dimension")
        for n, d in zip(names, r.twonn, strict=True)
    ]
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in r.notes)
    maps = [
        (r.linear_cka, "linear CKA"),
        (r.rbf_cka, "RBF CKA"),
        (r.procrustes_error, "Procrustes error (row aligned onto column)"),
    ]
    figures = "".join(
        f'<div class="figure">{heatmap_svg(m.tolist(), names, names, title=t)}</div>'
        for m, t in maps
    )
    return (
        f"<section><h2>Inputs</h2>{_table(rows)}{notes}</section>"
        f"<section><h2>Similarity</h2>{figures}</section>"
    )


def render_analysis(
    result: AnalysisResult | ComparisonResult,
    out_dir: str | os.PathLike[str],
    *,
    title: str = "embedlab analysis",
) -> Path:
    """Write ``out_dir/index.html`` (self-contained, inline SVG, atomic); return its path."""
    body = (
        _analysis_body(result) if isinstance(result, AnalysisResult) else _comparison_body(result)
    )
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    html = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>"
        f'<h1>{escape(title)}</h1><p class="meta">generated {generated}</p>{body}'
        "</main></body></html>\n"
    )
    return atomic_write_text(Path(out_dir) / "index.html", html)
