"""Graph embeddings and graph statistics: loaders, FastRP, node classification, graphlet orbits.

Example:
    >>> from embedlab.graph import fastrp, load_graph, node_classification  # doctest: +SKIP
    >>> g = load_graph("blogcatalog:../shared/data/blogcatalog/blogcatalog.mat")  # doctest: +SKIP
    >>> emb = fastrp(g.adj, 512)  # doctest: +SKIP
    >>> node_classification(emb, g.labels, train_ratio=0.1).micro_f1  # doctest: +SKIP
"""

from __future__ import annotations

from embedlab._lazy import lazy_exports
from embedlab.graph.bench import GRAPH_METHODS, embed, run_graph_bench, spectral_embedding
from embedlab.graph.evaluate import NodeClassificationResult, node_classification
from embedlab.graph.fastrp import PAPER_WEIGHTS, fastrp, sparse_random_projection
from embedlab.graph.graphlets import (
    ORBIT_PAIRS,
    OrbitPair,
    orbit_adjacencies,
    orbit_adjacencies_bruteforce,
)
from embedlab.graph.io import (
    Graph,
    RestrictedUnpickler,
    load_edgelist,
    load_graph,
    load_mat,
    load_planetoid,
    restricted_load,
)
from embedlab.graph.orbit_embedding import orbit_embedding

# torch-based parts load on first use, so ``import embedlab.graph`` stays light.
_LAZY = {
    "latent_graph": "embedlab.graph.latent_graph",
    "planetoid_split": "embedlab.graph.latent_graph",
    "distortion": "embedlab.graph.metric_embedding",
    "fit_metric_embedding": "embedlab.graph.metric_embedding",
    "shortest_path_metric": "embedlab.graph.metric_embedding",
}

__all__ = [
    "GRAPH_METHODS",
    "ORBIT_PAIRS",
    "PAPER_WEIGHTS",
    "Graph",
    "NodeClassificationResult",
    "OrbitPair",
    "RestrictedUnpickler",
    "distortion",
    "embed",
    "fastrp",
    "fit_metric_embedding",
    "latent_graph",
    "load_edgelist",
    "load_graph",
    "load_mat",
    "load_planetoid",
    "node_classification",
    "orbit_adjacencies",
    "orbit_adjacencies_bruteforce",
    "orbit_embedding",
    "planetoid_split",
    "restricted_load",
    "run_graph_bench",
    "shortest_path_metric",
    "sparse_random_projection",
    "spectral_embedding",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
