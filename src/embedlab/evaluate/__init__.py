"""Evaluation of learned embeddings: retrieval (precision@1, recall@k, MAP@R, R-precision)
and clustering (NMI, AMI via k-means; NMI, ARI, ACC of given cluster labels), on numpy
arrays or torch tensors."""

from __future__ import annotations

from embedlab.evaluate.cluster_scores import cluster_accuracy, cluster_scores
from embedlab.evaluate.clustering import clustering_metrics
from embedlab.evaluate.retrieval import retrieval_metrics

__all__ = [
    "cluster_accuracy",
    "cluster_scores",
    "clustering_metrics",
    "retrieval_metrics",
]
