"""Neural snowflakes: finite-metric embedding distortion, and latent-graph GCN on Cora.

(a) ``--part distortion``: shortest-path metrics of a balanced binary tree (depth 4, 31
    nodes) and of a 6 x 6 grid graph (36 nodes), embedded at dims 2/4/8 by optimising point
    positions (``fit_metric_embedding``, classical-MDS start) in Euclidean space, under a
    metric neural snowflake (final power < 1) and under a quasi-metric one (power free).
    Reports the distortion ``max(E/T) / min(E/T)`` (1 = isometric up to scale).
(b) ``--part latent``: Cora (``../shared/data/planetoid``, public split 140/500/1000), a
    two-layer GCN on the given graph vs on a latent kNN graph (k=10) inferred from the
    Euclidean or the snowflake metric of learned latent positions (``latent_graph``), with an
    GCN-on-the-given-graph (or MLP) encoder, with and without an extra triplet loss on the
    training nodes' latent positions; test accuracy at the best validation epoch, per seed,
    mean and std.

Usage:
    python benchmarks/snowflake.py [--part distortion|latent|all] [--steps 1000]
        [--epochs 100] [--seeds 0,1,2] [--encoders gcn,mlp] [--metric-weights 0,1]
        [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from embedlab.graph import load_graph
from embedlab.graph.latent_graph import latent_graph, planetoid_split
from embedlab.graph.metric_embedding import fit_metric_embedding, shortest_path_metric

ROOT = Path(__file__).resolve().parents[1]
PLANETOID = ROOT.parent / "shared" / "data" / "planetoid"


def balanced_tree(branching: int, depth: int) -> sp.csr_matrix:
    """Adjacency of the balanced tree (node ``i > 0`` hangs below ``(i - 1) // branching``)."""
    n = sum(branching**level for level in range(depth + 1))
    child = np.arange(1, n)
    parent = (child - 1) // branching
    upper = sp.coo_matrix((np.ones(n - 1), (parent, child)), shape=(n, n))
    return sp.csr_matrix(upper + upper.T)


def grid(rows: int, cols: int) -> sp.csr_matrix:
    """Adjacency of the ``rows x cols`` 4-neighbour grid."""
    idx = np.arange(rows * cols).reshape(rows, cols)
    src = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    dst = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    n = rows * cols
    upper = sp.coo_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    return sp.csr_matrix(upper + upper.T)


def part_distortion(steps: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    print("graph  dim  euclidean  snowflake  quasi_snowflake")
    for name, adj in (("tree(2,4)", balanced_tree(2, 4)), ("grid(6x6)", grid(6, 6))):
        d = shortest_path_metric(adj)
        for dim in (2, 4, 8):
            line = f"{name:9s} {dim:2d}"
            for geometry in ("euclidean", "snowflake", "quasi_snowflake"):
                t0 = time.perf_counter()
                res = fit_metric_embedding(d, dim, geometry=geometry, steps=steps)
                extra: dict[str, Any] = {}
                if res.snowflake is not None:
                    extra["final_power"] = float(res.snowflake.final_power().detach())
                rows.append(
                    {
                        "graph": name,
                        "dim": dim,
                        "geometry": geometry,
                        "distortion": res.distortion,
                        "seconds": time.perf_counter() - t0,
                        **extra,
                    }
                )
                line += f"  {res.distortion:9.3f}"
                if extra:
                    line += f" (p={extra['final_power']:.2f})"
            print(line, flush=True)
    return rows


def part_latent(
    epochs: int, seeds: list[int], encoders: list[str], metric_weights: list[float]
) -> list[dict[str, Any]]:
    g = load_graph(f"planetoid:{PLANETOID}")
    split = planetoid_split(PLANETOID)
    configs = [("given", "given", 0.0)] + [
        (graph, enc, mw)
        for enc in encoders
        for mw in metric_weights
        for graph in ("euclidean", "snowflake")
    ]
    rows: list[dict[str, Any]] = []
    for graph, enc, mw in configs:
        accs = []
        for seed in seeds:
            t0 = time.perf_counter()
            res = latent_graph(
                g.features,
                g.labels,
                split,
                graph=graph,
                adj=g.adj,
                encoder="mlp" if enc == "given" else enc,
                epochs=epochs,
                metric_weight=mw,
                seed=seed,
            )
            accs.append(res.test_accuracy)
            rows.append(
                {
                    "graph": graph,
                    "encoder": res.encoder,
                    "metric_weight": mw,
                    "seed": seed,
                    "test_accuracy": res.test_accuracy,
                    "val_accuracy": res.val_accuracy,
                    "best_epoch": res.best_epoch,
                    "edge_homophily": res.edge_homophily,
                    "seconds": time.perf_counter() - t0,
                }
            )
            print(
                f"{graph:9s} encoder={res.encoder:5s} metric_weight={mw:g} seed {seed}: "
                f"test {res.test_accuracy:.4f} val {res.val_accuracy:.4f} epoch {res.best_epoch} "
                f"homophily {res.edge_homophily:.3f}",
                flush=True,
            )
        print(
            f"  -> {graph} / {enc} / metric_weight={mw:g}: "
            f"{np.mean(accs):.4f} +- {np.std(accs):.4f}",
            flush=True,
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="all", choices=("distortion", "latent", "all"))
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--encoders", default="gcn")
    ap.add_argument("--metric-weights", default="0,1")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out: dict[str, Any] = {}
    if args.part in ("distortion", "all"):
        out["distortion"] = part_distortion(args.steps)
    if args.part in ("latent", "all"):
        if not PLANETOID.exists():
            print(f"skipped latent: {PLANETOID} is missing")
        else:
            seeds = [int(s) for s in args.seeds.split(",")]
            encoders = [e.strip() for e in args.encoders.split(",") if e.strip()]
            weights = [float(w) for w in args.metric_weights.split(",")]
            out["latent"] = part_latent(args.epochs, seeds, encoders, weights)
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
