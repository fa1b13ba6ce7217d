"""The self-contained HTML page of :func:`embedlab.analysis.render_analysis`."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import numpy as np

from embedlab._io import atomic_write_text
from embedlab.analysis.intrinsic_dim import PCADims, TwoNNFit
from embedlab.analysis.report import AnalysisResult, ComparisonResult

__all__ = ["render_page"]

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
    from embedlab.report.svg import XYSeries, xy_plot_svg

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
    from embedlab.report.svg import XYSeries, xy_plot_svg

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
        (
            "TwoNN",
            _fmt(None if r.twonn is None else r.twonn.dimension, 2),
            "intrinsic dimension (Facco et al. 2017)",
        ),
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
    if r.twonn is not None and r.twonn.n_duplicates:
        rows.append(("duplicates dropped", str(r.twonn.n_duplicates), "r1 = 0 in TwoNN"))
    if r.twonn is not None and r.twonn.n_ties:
        rows.append(("ties dropped", str(r.twonn.n_ties), "r2 = r1 in TwoNN"))
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
    twonn_figure = "" if r.twonn is None else f'<div class="figure">{_twonn_svg(r.twonn)}</div>'
    return (
        f"<section><h2>Measures</h2>{_table(rows)}{notes}</section>"
        f"<section><h2>Intrinsic dimension</h2>{twonn_figure}"
        f'<div class="figure">{_pca_svg(r.pca)}</div></section>'
    )


def _comparison_body(r: ComparisonResult) -> str:
    from embedlab.report.svg import heatmap_svg

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


def render_page(
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
