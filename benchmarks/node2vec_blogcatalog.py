"""node2vec (pecanpy, an external baseline) beside FastRP on BlogCatalog, 10 % labels.

Run from the project root:
    make pecanpy-env        # once: pecanpy in its own .venv-pecanpy, never in .venv
    PYTHONPATH=$PWD/src .venv/bin/python benchmarks/node2vec_blogcatalog.py --repeats 5

node2vec is not an embedlab method: pecanpy (Liu & Krishnan, Bioinformatics 2021, a fast
implementation of Grover & Leskovec, KDD 2016) runs as a subprocess from .venv-pecanpy on
the edge list written to a temporary folder, and its word2vec text output is read back with
:func:`embedlab.graph.word2vec_text.read_word2vec_text`. The settings are node2vec's common
ones: dim 128, walk length 80, 10 walks per node, window 10, one word2vec epoch (pecanpy's
default), ``p = q = 1`` (pecanpy mode ``FirstOrderUnweighted``: with p = q = 1 the walk is
first order) and ``p = q = 0.25`` (mode ``SparseOTF``). Every embedding is scored by
:func:`embedlab.graph.node_classification` on the same ``--repeats`` seeded 10 % splits as
``fastrp_blogcatalog.py`` (whose FastRP rows are printed first: the authors' setting, no row
normalisation, and ours). The authors of FastRP report Micro-F1 0.292 for it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from embedlab.graph import Graph
from embedlab.graph.word2vec_text import embedding_by_row, read_word2vec_text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastrp_blogcatalog import (  # a sibling script, on sys.path
    fastrp_rows,
    load_blogcatalog,
    score_row,
)

PECANPY = Path(__file__).resolve().parents[1] / ".venv-pecanpy" / "bin" / "pecanpy"
NODE2VEC = {"dimensions": 128, "walk-length": 80, "num-walks": 10, "window-size": 10}
SETTINGS = ((1.0, "FirstOrderUnweighted"), (0.25, "SparseOTF"))  # (p = q, pecanpy mode)


def write_edges(adj: sp.spmatrix, path: Path) -> None:
    """Each undirected edge once, ``u<TAB>v`` with node rows as ids (pecanpy's default)."""
    upper = sp.triu(adj, k=1).tocoo()
    np.savetxt(path, np.column_stack([upper.row, upper.col]), fmt="%d", delimiter="\t")


def node2vec(
    adj: sp.spmatrix, *, pq: float, mode: str, workers: int, seed: int, tmp: Path
) -> tuple[np.ndarray, float]:
    """``(embedding (n_nodes, 128), seconds)`` from pecanpy's CLI on ``adj``."""
    edges, out = tmp / "graph.edg", tmp / f"node2vec_pq{pq}.emb"
    if not edges.exists():
        write_edges(adj, edges)
    cmd = [str(PECANPY), "--input", str(edges), "--output", str(out), "--mode", mode]
    cmd += [f"--p={pq}", f"--q={pq}", f"--workers={workers}", f"--random_state={seed}"]
    cmd += [f"--{k}={v}" for k, v in NODE2VEC.items()]
    env = {**os.environ, "NUMBA_NUM_THREADS": str(workers)}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    seconds = time.perf_counter() - t0
    ids, vecs = read_word2vec_text(out, dim=NODE2VEC["dimensions"])
    emb, missing = embedding_by_row(ids, vecs, n_nodes=adj.shape[0])
    if missing:
        print(f"  {missing} nodes have no node2vec vector (isolated); they get zero rows")
    return emb, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="random 10 %% splits")
    parser.add_argument("--workers", type=int, default=2, help="pecanpy walk/word2vec threads")
    parser.add_argument("--seed", type=int, default=0, help="pecanpy --random_state")
    parser.add_argument("--skip-fastrp", action="store_true")
    args = parser.parse_args()
    if not PECANPY.exists():
        sys.exit(
            f"node2vec needs pecanpy in its own environment, not found at {PECANPY}; "
            "create it with `make pecanpy-env` (it never enters .venv)"
        )

    blog: Graph = load_blogcatalog()
    assert blog.labels is not None
    if not args.skip_fastrp:
        fastrp_rows(blog, args.repeats)
    with tempfile.TemporaryDirectory(prefix="node2vec_") as tmp:
        for pq, mode in SETTINGS:
            emb, seconds = node2vec(
                blog.adj, pq=pq, mode=mode, workers=args.workers, seed=args.seed, tmp=Path(tmp)
            )
            tag = f"node2vec p=q={pq:g} (pecanpy {mode}, dim 128)"
            score_row(tag, emb, blog.labels, args.repeats, [seconds])


if __name__ == "__main__":
    main()
