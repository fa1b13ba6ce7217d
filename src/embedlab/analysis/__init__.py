"""Measure embedding spaces: intrinsic dimension, similarity across spaces, geometry.

Plain functions on arrays: they accept numpy arrays or torch tensors ``(n_points, dim)``
and return python floats, numpy arrays or small frozen dataclasses.

>>> import numpy as np
>>> from embedlab.analysis import linear_cka, twonn
>>> x = np.random.default_rng(0).normal(size=(1000, 3)) @ np.ones((3, 30))  # doctest: +SKIP
"""

from __future__ import annotations

from embedlab.analysis._knn import faiss_available, knn
from embedlab.analysis.dataset import d_data, d_repr, label_sharpness, representations
from embedlab.analysis.explain import ExplainResult, explain_embedding, feature_importance
from embedlab.analysis.geometry import (
    NeuralCollapse,
    alignment,
    hubness,
    k_occurrence,
    neural_collapse,
    uniformity,
)
from embedlab.analysis.infomec import InfoMEC, infomec
from embedlab.analysis.intrinsic_dim import (
    PCADims,
    TwoNNFit,
    effective_rank,
    mle_id,
    pca_dims,
    twonn,
)
from embedlab.analysis.mixup_probe import MixupGeometry, mixup_geometry, mixup_probe
from embedlab.analysis.report import (
    AnalysisResult,
    ComparisonResult,
    analyze_embeddings,
    compare_embeddings,
    render_analysis,
)
from embedlab.analysis.similarity import (
    SparseUnitMatch,
    UnitMatch,
    linear_cka,
    match_units,
    rbf_cka,
    relative_projection,
    sparse_match_units,
    stitch,
    unit_correlation,
)
from embedlab.analysis.space_alignment import (
    CCAResult,
    ProcrustesResult,
    SubspaceAlignment,
    cca_align,
    mean_center_align,
    procrustes,
    subspace_align,
)
from embedlab.analysis.subspace import (
    DenseProjection,
    FastfoodProjection,
    SparseProjection,
    SubspaceModel,
    fast_walsh_hadamard,
    make_projection,
)
from embedlab.analysis.subspace_sweep import (
    SweepResult,
    intrinsic_dimension_sweep,
    train_full,
    train_subspace,
)

__all__ = [
    "AnalysisResult",
    "CCAResult",
    "ComparisonResult",
    "DenseProjection",
    "ExplainResult",
    "FastfoodProjection",
    "InfoMEC",
    "MixupGeometry",
    "NeuralCollapse",
    "PCADims",
    "ProcrustesResult",
    "SparseProjection",
    "SparseUnitMatch",
    "SubspaceAlignment",
    "SubspaceModel",
    "SweepResult",
    "TwoNNFit",
    "UnitMatch",
    "alignment",
    "analyze_embeddings",
    "cca_align",
    "compare_embeddings",
    "d_data",
    "d_repr",
    "effective_rank",
    "explain_embedding",
    "faiss_available",
    "fast_walsh_hadamard",
    "feature_importance",
    "hubness",
    "infomec",
    "intrinsic_dimension_sweep",
    "k_occurrence",
    "knn",
    "label_sharpness",
    "linear_cka",
    "make_projection",
    "match_units",
    "mean_center_align",
    "mixup_geometry",
    "mixup_probe",
    "mle_id",
    "neural_collapse",
    "pca_dims",
    "procrustes",
    "rbf_cka",
    "relative_projection",
    "render_analysis",
    "representations",
    "sparse_match_units",
    "stitch",
    "subspace_align",
    "train_full",
    "train_subspace",
    "twonn",
    "uniformity",
    "unit_correlation",
]
