"""Graph embeddings and graph statistics: loaders, FastRP, node classification, graphlet orbits.

Example:
    >>> from embedlab.graph import fastrp, load_graph, node_classification  # doctest: +SKIP
    >>> g = load_graph("blogcatalog:../shared/data/blogcatalog/blogcatalog.mat")  # doctest: +SKIP
    >>> emb = fastrp(g.adj, 512)  # doctest: +SKIP
    >>> node_classification(emb, g.labels, train_ratio=0.1).micro_f1  # doctest: +SKIP
"""

from __future__ import annotations

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

__all__ = [
    "GRAPH_METHODS",
    "ORBIT_PAIRS",
    "PAPER_WEIGHTS",
    "Graph",
    "NodeClassificationResult",
    "OrbitPair",
    "RestrictedUnpickler",
    "embed",
    "fastrp",
    "load_edgelist",
    "load_graph",
    "load_mat",
    "load_planetoid",
    "node_classification",
    "orbit_adjacencies",
    "orbit_adjacencies_bruteforce",
    "orbit_embedding",
    "restricted_load",
    "run_graph_bench",
    "sparse_random_projection",
    "spectral_embedding",
]
