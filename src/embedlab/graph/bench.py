"""The graph suite: node embeddings x dimensions, scored by node classification.

Methods:

- ``fastrp``: :func:`embedlab.graph.fastrp.fastrp` with the given settings (the paper's
  BlogCatalog setting by default);
- ``spectral``: the ``dim`` leading eigenvectors of ``D^-1/2 S D^-1/2`` (Laplacian
  eigenmaps; a classic baseline, much slower than FastRP on large graphs);
- ``randproj``: the very sparse random projection of the adjacency alone (FastRP with one
  iteration and no degree normalisation), to show what the higher powers add;
- ``orbits``: :func:`embedlab.graph.orbit_embedding.orbit_embedding`, FastRP (same settings)
  on each graphlet-orbit adjacency class, concatenated (GRADCO); the orbit counts are computed
  once per run, with ``orbit_hops`` (``"auto"``: all hops up to 5,000 nodes, one hop above);
- ``snowflake_latent`` / ``euclid_latent``: the latent-graph GCN of
  :func:`embedlab.graph.latent_graph.latent_graph` (kNN graph under a learned neural-snowflake
  / Euclidean metric; needs node features). It is a semi-supervised classifier, not an
  embedding: it trains on each split's training nodes and its own test predictions are scored
  (see :mod:`embedlab.graph._latent_bench`); one record per seed (``dims`` do not apply,
  ``params["dim"]`` is its latent dimension, ``params["scoring"]`` says how it was scored);
- ``gcn``: the plain two-layer GCN on the given graph (Kipf & Welling), scored the same way:
  the reference of the latent methods (``params["dim"]``: its hidden width).

Each (method, dim, seed) gives one :class:`~embedlab.bench.BenchRecord` of suite ``"graph"``
with metrics ``{"micro_f1", "macro_f1"}`` (Micro-F1 first: the report plots the first
metric), ``timing["embed_s"]`` and ``memory_bytes`` = bytes of the float32 embedding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh

from embedlab import __version__
from embedlab._validation import check_adjacency, check_choice, check_int
from embedlab.bench import BenchRecord
from embedlab.graph._latent_bench import LATENT_METHODS, latent_node_classification
from embedlab.graph.evaluate import node_classification
from embedlab.graph.fastrp import PAPER_WEIGHTS, fastrp
from embedlab.graph.graphlets import orbit_adjacencies
from embedlab.graph.orbit_embedding import orbit_embedding

__all__ = [
    "EMBED_METHODS",
    "GRAPH_METHODS",
    "LATENT_DEFAULTS",
    "embed",
    "run_graph_bench",
    "spectral_embedding",
]

EMBED_METHODS = ("fastrp", "orbits", "randproj", "spectral")
GRAPH_METHODS = (*EMBED_METHODS, *LATENT_METHODS)

LATENT_DEFAULTS: dict[str, Any] = {"encoder": "gcn", "latent_dim": 16, "k": 10, "epochs": 100}
"""``latent_graph`` settings of the latent methods unless ``latent_options`` overrides them."""

AUTO_ORBIT_NODES = 5000
"""Above this many nodes ``orbit_hops="auto"`` counts one-hop orbit matrices only."""


def spectral_embedding(adj: Any, dim: int, *, seed: int = 0) -> np.ndarray:
    """``(n, dim)`` float32: leading eigenvectors of the normalised adjacency."""
    mat = check_adjacency("adj", adj)
    dim = check_int("dim", dim, min_value=1)
    n = mat.shape[0]
    if dim >= n:
        raise ValueError(f"dim must be < n_nodes={n} for the spectral embedding, got {dim}")
    deg = np.asarray(mat.sum(axis=1)).reshape(-1)
    inv_sqrt = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    norm = sp.diags(inv_sqrt) @ mat @ sp.diags(inv_sqrt)
    v0 = np.random.default_rng(seed).standard_normal(n)
    _, vecs = eigsh(norm, k=dim, which="LA", v0=v0)
    return np.asarray(vecs[:, ::-1], dtype=np.float32)


def embed(
    method: str,
    adj: Any,
    dim: int,
    *,
    seed: int = 0,
    weights: Sequence[float] = PAPER_WEIGHTS,
    beta: float = -0.628,
    normalization: bool = True,
    orbit_mats: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Embed with ``method`` (one of :data:`EMBED_METHODS`); ``(n, dim)`` float32.

    ``orbit_mats``: ready orbit-adjacency matrices for ``orbits`` (counted here otherwise).
    """
    method = check_choice("method", method, EMBED_METHODS)
    if method == "orbits":
        return orbit_embedding(
            adj, dim, weights=weights, beta=beta, seed=seed, orbit_mats=orbit_mats
        )
    if method == "fastrp":
        return fastrp(adj, dim, weights=weights, beta=beta, normalization=normalization, seed=seed)
    if method == "randproj":
        return fastrp(adj, dim, weights=(1.0,), beta=0.0, normalization=True, seed=seed)
    return spectral_embedding(adj, dim, seed=seed)


def run_graph_bench(
    adj: Any,
    labels: Any,
    *,
    dataset: str,
    methods: Sequence[str] = ("fastrp",),
    dims: Sequence[int] = (128,),
    train_ratio: float = 0.1,
    n_repeats: int = 5,
    seeds: Sequence[int] = (0,),
    weights: Sequence[float] = PAPER_WEIGHTS,
    beta: float = -0.628,
    normalization: bool = True,
    orbit_hops: Sequence[int] | str = "auto",
    features: Any = None,
    latent_options: Mapping[str, Any] | None = None,
    on_record: Callable[[BenchRecord], None] | None = None,
) -> list[BenchRecord]:
    """Embed with every method at every dimension and seed; score node classification.

    Args:
        adj: ``(n, n)`` adjacency.
        labels: ``(n,)`` class ids or ``(n, n_labels)`` indicator matrix.
        dataset: name written in the records.
        methods: names from :data:`GRAPH_METHODS`.
        dims: embedding dimensions.
        train_ratio: labelled fraction for the classifier.
        n_repeats: random splits averaged per record.
        seeds: one record per seed (embedding seed and split seed).
        weights, beta, normalization: FastRP settings (recorded in ``params``).
        orbit_hops: hops of the orbit matrices for ``orbits``, or ``"auto"`` (all three up to
            :data:`AUTO_ORBIT_NODES` nodes, ``(1,)`` above: two-hop matrices are nearly dense
            on large social graphs).
        features: ``(n, f)`` node features, needed by the latent methods only.
        latent_options: ``latent_graph`` keywords of the latent methods over
            :data:`LATENT_DEFAULTS` (``encoder``, ``latent_dim``, ``k``, ``epochs``, ...).
        on_record: called with each record as soon as it is measured.
    """
    if not methods:
        raise ValueError("methods must not be empty")
    for m in methods:
        check_choice("method", m, GRAPH_METHODS)
    dims = [check_int("dim", d, min_value=1) for d in dims]
    if not dims:
        raise ValueError("dims must not be empty")
    if not seeds:
        raise ValueError("seeds must not be empty")
    seeds = [check_int("seed", s, min_value=0) for s in seeds]
    mat = check_adjacency("adj", adj)
    hops = _orbit_hops(orbit_hops, mat.shape[0])
    latent = {**LATENT_DEFAULTS, **(latent_options or {})}
    if features is None and any(m in LATENT_METHODS for m in methods):
        raise ValueError(
            "features must be given for the latent methods "
            f"({', '.join(m for m in methods if m in LATENT_METHODS)}); load planetoid data"
        )
    orbit_mats: dict[str, Any] | None = None
    orbit_s = 0.0
    if "orbits" in methods:
        t_orb = time.perf_counter()
        orbit_mats = orbit_adjacencies(mat, hops=hops)
        orbit_s = time.perf_counter() - t_orb
    records: list[BenchRecord] = []
    for seed in seeds:
        for method in methods:
            if method in LATENT_METHODS:
                record = _latent_record(
                    method, features, mat, labels, latent, dataset, train_ratio, n_repeats, seed
                )
                records.append(record)
                if on_record is not None:
                    on_record(record)
                continue
            for dim in dims:
                t0 = time.perf_counter()
                emb = embed(
                    method,
                    mat,
                    dim,
                    seed=seed,
                    weights=weights,
                    beta=beta,
                    normalization=normalization,
                    orbit_mats=orbit_mats,
                )
                embed_s = time.perf_counter() - t0
                t1 = time.perf_counter()
                scores = node_classification(
                    emb, labels, train_ratio=train_ratio, n_repeats=n_repeats, seed=seed
                )
                eval_s = time.perf_counter() - t1
                params: dict[str, Any] = {
                    "dim": dim,
                    "train_ratio": train_ratio,
                    "n_repeats": n_repeats,
                    "n_nodes": int(mat.shape[0]),
                    "n_edges": int(mat.nnz // 2),
                    "micro_f1_std": scores.micro_f1_std,
                    "macro_f1_std": scores.macro_f1_std,
                }
                if method == "orbits":
                    params.update(orbit_hops=list(hops), orbit_count_s=orbit_s)
                if method in ("fastrp", "orbits"):
                    params.update(
                        weights=[float(w) for w in weights],
                        beta=float(beta),
                        normalization=normalization,
                    )
                record = BenchRecord(
                    suite="graph",
                    dataset=dataset,
                    method=method,
                    memory_bytes=int(emb.nbytes),
                    metrics={"micro_f1": scores.micro_f1, "macro_f1": scores.macro_f1},
                    timing={"embed_s": embed_s, "eval_s": eval_s},
                    params=params,
                    seed=seed,
                    embedlab_version=__version__,
                )
                records.append(record)
                if on_record is not None:
                    on_record(record)
    return records


def _latent_record(
    method: str,
    features: Any,
    mat: Any,
    labels: Any,
    latent: dict[str, Any],
    dataset: str,
    train_ratio: float,
    n_repeats: int,
    seed: int,
) -> BenchRecord:
    t0 = time.perf_counter()
    scores = latent_node_classification(
        method, features, mat, labels, train_ratio=train_ratio, n_repeats=n_repeats,
        seed=seed, **latent,
    )  # fmt: skip
    elapsed = time.perf_counter() - t0
    n = int(mat.shape[0])
    # the latent positions' width; for the plain GCN, its hidden layer's (no latent space)
    dim = int(latent.get("hidden", 32) if method == "gcn" else latent["latent_dim"])
    return BenchRecord(
        suite="graph",
        dataset=dataset,
        method=method,
        memory_bytes=n * dim * 4,  # float32 latent positions (gcn: hidden features)
        metrics={"micro_f1": scores.micro_f1, "macro_f1": scores.macro_f1},
        timing={"embed_s": elapsed, "eval_s": 0.0},
        params={
            "dim": dim,
            "train_ratio": train_ratio,
            "n_repeats": n_repeats,
            "n_nodes": n,
            "n_edges": int(mat.nnz // 2),
            "micro_f1_std": scores.micro_f1_std,
            "macro_f1_std": scores.macro_f1_std,
            "scoring": (
                "the GCN's own test predictions; trained per split on its training nodes "
                "(20% of them held out to pick the epoch); embed_s includes all training"
            ),
            "val_fraction": 0.2,
            "latent": dict(latent),
        },
        seed=seed,
        embedlab_version=__version__,
    )


def _orbit_hops(value: Sequence[int] | str, n_nodes: int) -> tuple[int, ...]:
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"orbit_hops must be 'auto' or a sequence of 1, 2, 3, got {value!r}")
        return (1, 2, 3) if n_nodes <= AUTO_ORBIT_NODES else (1,)
    hops = tuple(value)
    if not hops or any(isinstance(h, bool) or h not in (1, 2, 3) for h in hops):
        raise ValueError(f"orbit_hops must be 'auto' or a sequence of 1, 2, 3, got {value!r}")
    return hops
