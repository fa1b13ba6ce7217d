"""Clustering: one registry (``CLUSTERERS``) of scikit-learn-like clusterers.

``make_clusterer("depict(epochs=20)", n_clusters=10, seed=0)`` builds one by spec
string; every clusterer has ``fit(x)``, ``fit_predict(x)``, ``labels_`` and
``n_clusters`` (and ``predict`` where the method defines it); a ``semi_supervised``
clusterer (``ss_kmeans``) also takes partial labels, ``fit(x, y)`` with ``-1`` unlabelled.
Score a clustering with :func:`embedlab.evaluate.cluster_scores` (NMI, ARI, ACC).

Example:
    >>> import numpy as np
    >>> from embedlab.cluster import make_clusterer
    >>> x = np.r_[np.zeros((4, 2)), np.ones((4, 2))]
    >>> labels = make_clusterer("kmeans", n_clusters=2).fit_predict(x)
    >>> len(set(labels[:4])), len(set(labels))
    (1, 2)
"""

from __future__ import annotations

from embedlab.cluster._base import Clusterer
from embedlab.cluster._registry import CLUSTERERS, make_clusterer, register_clusterer
from embedlab.cluster.acpic import ACPICClusterer, acpic_labels
from embedlab.cluster.depict import DEPICTClusterer, depict_target
from embedlab.cluster.kmeans import KMeansClusterer
from embedlab.cluster.mlc import MLCClusterer, doubly_stochastic
from embedlab.cluster.spectral import SpectralClusterer, spectral_labels
from embedlab.cluster.ss_kmeans import SSKMeansClusterer, semi_supervised_kmeans

__all__ = [
    "CLUSTERERS",
    "ACPICClusterer",
    "Clusterer",
    "DEPICTClusterer",
    "KMeansClusterer",
    "MLCClusterer",
    "SSKMeansClusterer",
    "SpectralClusterer",
    "acpic_labels",
    "depict_target",
    "doubly_stochastic",
    "make_clusterer",
    "register_clusterer",
    "semi_supervised_kmeans",
    "spectral_labels",
]
