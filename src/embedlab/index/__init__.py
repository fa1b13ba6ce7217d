"""Compressed vector indexes behind one protocol: ``train / add / search / remove / save``.

Example:
    >>> import numpy as np
    >>> from embedlab.index import index_factory, load_index
    >>> x = np.random.default_rng(0).standard_normal((1000, 64)).astype("float32")
    >>> index = index_factory(64, "Binary,Rerank(Flat)", metric="cos")
    >>> index.train(x); index.add(x)
    >>> scores, ids = index.search(x[:5], k=10)
    >>> ids.shape
    (5, 10)
"""

from __future__ import annotations

# Importing the modules below registers their index classes in INDEXES.
from embedlab.index._base import (
    F32,
    INDEXES,
    Metric,
    VectorIndex,
    l2_normalize,
    register_index,
)
from embedlab.index.aspects import MultiAspectIndex
from embedlab.index.bae import BAE
from embedlab.index.bebr import BEBR
from embedlab.index.binary import Binary
from embedlab.index.chamfer import chamfer_search
from embedlab.index.compat import CompatIndex, bt2_transform, procrustes_transform
from embedlab.index.factory import index_factory, parse_index_spec
from embedlab.index.faiss_interop import from_faiss, to_faiss
from embedlab.index.filtered import FilteredIndex, load_filtered
from embedlab.index.flat import Flat
from embedlab.index.hnsw import HNSW
from embedlab.index.int8 import Int8
from embedlab.index.io import load_index, save_index
from embedlab.index.itq import ITQ
from embedlab.index.ivf import IVF
from embedlab.index.matryoshka import Matryoshka
from embedlab.index.muvera import FDE, MUVERA, load_muvera
from embedlab.index.pq import OPQ, PQ
from embedlab.index.rerank import Rerank
from embedlab.index.sharded import ShardedIndex
from embedlab.index.token_heuristic import TokenHeuristic

__all__ = [
    "BAE",
    "BEBR",
    "F32",
    "FDE",
    "HNSW",
    "INDEXES",
    "ITQ",
    "IVF",
    "MUVERA",
    "OPQ",
    "PQ",
    "Binary",
    "CompatIndex",
    "FilteredIndex",
    "Flat",
    "Int8",
    "Matryoshka",
    "Metric",
    "MultiAspectIndex",
    "Rerank",
    "ShardedIndex",
    "TokenHeuristic",
    "VectorIndex",
    "bt2_transform",
    "chamfer_search",
    "from_faiss",
    "index_factory",
    "l2_normalize",
    "load_filtered",
    "load_index",
    "load_muvera",
    "parse_index_spec",
    "procrustes_transform",
    "register_index",
    "save_index",
    "to_faiss",
]
