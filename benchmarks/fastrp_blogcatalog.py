"""FastRP on BlogCatalog and Cora against the paper's numbers; graphlet-orbit timings.

Run from the project root:  .venv/bin/python benchmarks/fastrp_blogcatalog.py [--repeats 5]

Reference (Chen et al., CIKM 2019, BlogCatalog, dim 512, weights [1, 1, 7.81, 45.28],
beta -0.628, 10 % labelled): Micro-F1 0.292, 1.17 s to embed on the authors' machine.
The authors' BlogCatalog configuration does NOT row-normalise the adjacency
(``normalization=False``); our default (``normalization=True``) is reported beside it.
Data are read from ../shared/data (never copied into the repository).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from embedlab.graph import Graph, fastrp, load_graph, node_classification, orbit_adjacencies

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PAPER = {"dim": 512, "weights": (1.0, 1.0, 7.81, 45.28), "beta": -0.628}


def _embed_timed(adj: object, runs: int, **kw: object) -> tuple[np.ndarray, list[float]]:
    times = []
    emb = np.empty(0)
    for _ in range(runs):
        t0 = time.perf_counter()
        emb = fastrp(adj, **kw)  # type: ignore[arg-type]
        times.append(time.perf_counter() - t0)
    return emb, times


def score_row(
    tag: str, emb: np.ndarray, labels: np.ndarray, repeats: int, times: list[float]
) -> None:
    """Print one row: Micro/Macro-F1 (mean ± std over ``repeats`` seeded 10 % splits), time."""
    res = node_classification(emb, labels, train_ratio=0.1, n_repeats=repeats, seed=0)
    print(
        f"{tag:<58} micro-F1 {res.micro_f1:.4f} ± {res.micro_f1_std:.4f}  "
        f"macro-F1 {res.macro_f1:.4f} ± {res.macro_f1_std:.4f}  "
        f"embed {statistics.median(times):.2f} s (median of {len(times)}, first {times[0]:.2f})",
        flush=True,
    )


def load_blogcatalog() -> Graph:
    blog = load_graph(f"blogcatalog:{DATA / 'blogcatalog' / 'blogcatalog.mat'}")
    print(f"BlogCatalog: {blog.n_nodes:,} nodes, {blog.n_edges:,} edges, 39 labels")
    return blog


def fastrp_rows(blog: Graph, repeats: int) -> None:
    """The two FastRP rows: the authors' setting (no row normalisation) and ours."""
    assert blog.labels is not None
    emb, times = _embed_timed(
        blog.adj, 3, dim=512, weights=PAPER["weights"], beta=-0.628, normalization=False
    )
    score_row("fastrp paper setting (no row normalisation)", emb, blog.labels, repeats, times)
    emb, times = _embed_timed(blog.adj, 1, dim=512, weights=PAPER["weights"], beta=-0.628)
    score_row("fastrp, paper weights + our row normalisation", emb, blog.labels, repeats, times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="random 10 %% splits")
    parser.add_argument("--skip-blog-orbits", action="store_true")
    args = parser.parse_args()

    blog = load_blogcatalog()
    assert blog.labels is not None
    fastrp_rows(blog, args.repeats)
    emb, times = _embed_timed(blog.adj, 1, dim=512, weights=(1.0,), beta=0.0)
    score_row("randproj baseline (A R only)", emb, blog.labels, args.repeats, times)

    cora = load_graph(f"cora:{DATA / 'planetoid'}")
    assert cora.labels is not None
    print(f"Cora: {cora.n_nodes:,} nodes, {cora.n_edges:,} edges, 7 classes")
    for dim in (128, 512):
        emb, times = _embed_timed(cora.adj, 3, dim=dim, weights=PAPER["weights"], beta=-0.628)
        score_row(f"fastrp dim {dim}, paper (BlogCatalog) setting", emb, cora.labels, 10, times)
        w6 = (0.0, 0.0, 1.0, 1.0, 1.0, 1.0)
        emb, times = _embed_timed(cora.adj, 3, dim=dim, weights=w6, beta=0.0)
        score_row(f"fastrp dim {dim}, weights {w6}, beta 0", emb, cora.labels, 10, times)

    t0 = time.perf_counter()
    mats = orbit_adjacencies(cora.adj)
    nnz = sum(m.nnz for m in mats.values())
    print(f"orbits Cora, all 28 matrices: {time.perf_counter() - t0:.2f} s, {nnz:,} non-zeros")
    if not args.skip_blog_orbits:
        a = blog.adj
        a2_nnz = (a @ a).nnz
        print(f"BlogCatalog A^2 has {a2_nnz:,} non-zeros ({a2_nnz / a.shape[0] ** 2:.0%} dense)")
        t0 = time.perf_counter()
        mats = orbit_adjacencies(blog.adj, hops=(1,), block_size=256)
        nnz = sum(m.nnz for m in mats.values())
        print(
            f"orbits BlogCatalog, 19 one-hop matrices: {time.perf_counter() - t0:.1f} s, "
            f"{nnz:,} non-zeros"
        )


if __name__ == "__main__":
    main()
