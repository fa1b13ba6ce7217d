"""MUVERA with a sub-linear first stage vs brute-force Chamfer, on synthetic token sets.

Documents are sets of ``--tokens`` unit vectors around a few topic directions each (drawn
from a shared pool of ``--topics``), like the token embeddings of a passage; a query is a
noisy subset of one document's tokens plus tokens of a related topic. Ground truth: exact
Chamfer top-10 by brute force (``chamfer_search``), timed in the same run.

Compared: ``MUVERA(r,k,p),Flat,Rerank(Chamfer)`` (flat FDE scan),
``MUVERA(r,k,p),IVF{nlist},Flat,Rerank(Chamfer)`` at several ``nprobe`` and
``MUVERA(r,k,p),HNSW{M},Rerank(Chamfer)`` at several ``efSearch``; recall@10 against
brute force and end-to-end queries/s.

What limits recall here is the first stage's graph, not the FDE: on 100k docs the exact
FDE top-200 holds 0.948 of the Chamfer top-10 (``r=20,k=3,p=8``, 1,280-d); the 200
candidates of faiss' HNSW32 at ``efSearch=200`` hold 0.80 of it when the graph is built
with faiss' default ``efConstruction=40`` (0.90 at ``efSearch=800``) and 0.953 when built
with ``efConstruction=200``, at about the same search speed. Hence the defaults below
(``r=10,k=4,p=8`` with ``efConstruction=40`` gave 0.68 with 100 candidates).

Usage:
    python benchmarks/muvera_ivf.py [--docs 30000] [--tokens 24] [--dim 64] [--queries 200]
"""

from __future__ import annotations

import argparse
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=30_000)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--topics", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--nlist", type=int, default=256)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--muvera", default="r=20,k=3,p=8")
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--stages", default="flat,ivf,hnsw", help="comma list of flat,ivf,hnsw")
    args = parser.parse_args()

    import numpy as np

    from embedlab.index import index_factory
    from embedlab.index.chamfer import chamfer_search

    rng = np.random.default_rng(0)
    topics = rng.standard_normal((args.topics, args.dim)).astype(np.float32)

    def unit(v: np.ndarray) -> np.ndarray:
        return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)

    doc_topics = rng.integers(0, args.topics, (args.docs, 3))
    docs = []
    for t in doc_topics:
        pick = t[rng.integers(0, 3, args.tokens)]
        docs.append(unit(topics[pick] + 0.3 * rng.standard_normal((args.tokens, args.dim))))
    src = rng.choice(args.docs, args.queries, replace=False)
    queries = [
        unit(docs[i][rng.choice(args.tokens, 8, replace=False)]
             + 0.1 * rng.standard_normal((8, args.dim)).astype(np.float32))
        for i in src
    ]  # fmt: skip
    print(f"{args.docs} docs x {args.tokens} tokens x {args.dim}-d, {args.queries} queries")

    t0 = time.perf_counter()
    _, truth = chamfer_search(queries, docs, 10)
    bf_qps = args.queries / (time.perf_counter() - t0)
    print(f"brute-force Chamfer: {bf_qps:8.1f} queries/s")

    def recall(ids: np.ndarray) -> float:
        return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)]))

    spec_flat = f"MUVERA({args.muvera}),Flat,Rerank(Chamfer)"
    spec_ivf = f"MUVERA({args.muvera}),IVF{args.nlist},Flat,Rerank(Chamfer)"
    spec_hnsw = (
        f"MUVERA({args.muvera}),HNSW{args.hnsw_m}(efConstruction={args.ef_construction}),"
        "Rerank(Chamfer)"
    )
    stages = {
        "flat": (spec_flat, "", [None]),
        "ivf": (spec_ivf, "nprobe", [4, 8, 16, 32]),
        "hnsw": (spec_hnsw, "efSearch", [c * args.candidates for c in (1, 2, 4)]),
    }
    for stage in args.stages.split(","):
        spec, knob, probes = stages[stage]
        index = index_factory(args.dim, spec)
        t0 = time.perf_counter()
        index.train_multi(docs[: min(len(docs), 20_000)])  # type: ignore[attr-defined]
        index.add_multi(docs)  # type: ignore[attr-defined]
        build = time.perf_counter() - t0
        for nprobe in probes:
            params = {} if nprobe is None else {knob: nprobe}
            index.search_multi(queries[:5], 10, candidates=args.candidates, **params)  # type: ignore[attr-defined]
            t0 = time.perf_counter()
            _, ids = index.search_multi(  # type: ignore[attr-defined]
                queries, 10, candidates=args.candidates, **params
            )
            qps = args.queries / (time.perf_counter() - t0)
            label = spec if nprobe is None else f"{spec} {knob}={nprobe}"
            print(
                f"{label:60s} recall@10 {recall(ids):.3f}  {qps:8.1f} q/s  "
                f"{qps / bf_qps:5.1f}x brute force  (build {build:.0f} s)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
