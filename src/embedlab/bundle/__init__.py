"""Bundle completion: CLHE (Ma et al. 2024) and its ablations, trained on partial bundles
and scored by Recall@k / NDCG@k.

>>> from embedlab.bundle import make_bundle_model
>>> model = make_bundle_model("clhe", item_features)  # doctest: +SKIP
"""

from __future__ import annotations

from embedlab.bundle.clhe import CLHE, BundleLosses
from embedlab.bundle.losses import completion_loss, info_nce, pad_bundles
from embedlab.bundle.training import (
    BUNDLE_METHODS,
    BundleTrainLog,
    completion_metrics,
    evaluate_completion,
    make_bundle_model,
    train_bundle_model,
)

__all__ = [
    "BUNDLE_METHODS",
    "CLHE",
    "BundleLosses",
    "BundleTrainLog",
    "completion_loss",
    "completion_metrics",
    "evaluate_completion",
    "info_nce",
    "make_bundle_model",
    "pad_bundles",
    "train_bundle_model",
]
