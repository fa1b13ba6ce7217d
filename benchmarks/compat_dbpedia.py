"""Versioned index on DBpedia: new-model queries on an old-model gallery, with and without a map.

The "old model" is MiniLM (384-d) on beir-mini/dbpedia. Two "new models" are built offline
from it, since no second text model ships with embedlab:

- ``rotated``: a random rotation of MiniLM plus Gaussian noise (std 0.3 / sqrt(384) per
  dim, about 30% of a unit vector's norm) — a model that learned the same space in
  another basis;
- ``nonlinear``: ``tanh(2 * R x)`` plus the same noise — a distortion no linear map undoes.

For each new model: recall@10 of new-model queries (1,000 held-out corpus texts) on the old
gallery index (Flat, cosine) against the old/old exact top-10, (a) with no transform
(only meaningful when dims match), (b) through ``CompatIndex`` with an orthogonal
Procrustes map fitted on 1,000 paired corpus embeddings, (c) with the gallery re-embedded
by the new model (the expensive baseline; recall measured against the new/new exact
top-10, so it is 1.0 by construction, and nDCG@10 on the BEIR qrels is the comparable
figure). nDCG@10 uses the 50 BEIR queries.

Usage:
    python benchmarks/compat_dbpedia.py [--data ../shared/data/beir-mini/dbpedia]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir-mini" / "dbpedia"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n-fit", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found")
        return 0

    from embedlab.bench.retrieval import exact_search, ndcg_at_k, recall_at_k
    from embedlab.data.retrieval import load_retrieval
    from embedlab.index import CompatIndex, Flat, procrustes_transform

    data = load_retrieval(f"beir:{args.data}", seed=args.seed, progress=False)
    assert data.holdout is not None and data.qrels is not None
    corpus, held, queries = data.corpus, data.holdout, data.queries
    dim = corpus.shape[1]
    rng = np.random.default_rng(args.seed)
    rot = np.linalg.qr(rng.standard_normal((dim, dim)))[0].astype(np.float32)
    noise = 0.3 / np.sqrt(dim)

    def unit(a: np.ndarray) -> np.ndarray:
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    def new_models(x: np.ndarray, stream: int) -> dict[str, np.ndarray]:
        g = np.random.default_rng(args.seed * 1000 + stream)
        eps = noise * g.standard_normal(x.shape).astype(np.float32)
        x = unit(x)
        return {"rotated": x @ rot + eps, "nonlinear": np.tanh(2.0 * (x @ rot)) + eps}

    new_corpus, new_held, new_queries = (
        new_models(corpus, 1),
        new_models(held, 2),
        new_models(queries, 3),
    )
    old_index = Flat(dim, metric="cos")
    old_index.add(corpus)
    _, truth_old = exact_search(corpus, held, 10)
    _, old_q = old_index.search(queries, 10)

    def ndcg(rows: np.ndarray) -> float:
        ranked = [[data.corpus_ids[r] for r in row if r >= 0] for row in rows]
        return ndcg_at_k(ranked, data.query_ids, data.qrels)

    print(
        f"dbpedia: {corpus.shape[0]} corpus, {held.shape[0]} held-out queries, "
        f"{queries.shape[0]} BEIR queries; Procrustes fitted on {args.n_fit} paired corpus rows"
    )
    print(f"old / old (reference)          recall@10 1.0000  nDCG@10 {ndcg(old_q):.4f}")
    fit = rng.choice(corpus.shape[0], args.n_fit, replace=False)
    for name in ("rotated", "nonlinear"):
        nq_held, nq_beir = new_held[name], new_queries[name]
        _, raw = old_index.search(nq_held, 10)
        _, raw_q = old_index.search(nq_beir, 10)
        compat = CompatIndex(old_index, procrustes_transform(new_corpus[name][fit], corpus[fit]))
        _, mapped = compat.search(nq_held, 10)
        _, mapped_q = compat.search(nq_beir, 10)
        re_index = Flat(dim, metric="cos")
        re_index.add(new_corpus[name])
        _, truth_new = exact_search(new_corpus[name], nq_held, 10)
        _, re_q = re_index.search(nq_beir, 10)
        print(f"new model: {name}")
        print(
            f"  new / old, no transform      recall@10 {recall_at_k(raw, truth_old, 10):.4f}  "
            f"nDCG@10 {ndcg(raw_q):.4f}"
        )
        print(
            f"  new / old, Procrustes        recall@10 {recall_at_k(mapped, truth_old, 10):.4f}  "
            f"nDCG@10 {ndcg(mapped_q):.4f}"
        )
        print(
            f"  new / new, re-embedded       recall@10 "
            f"{recall_at_k(re_index.search(nq_held, 10)[1], truth_new, 10):.4f}  "
            f"nDCG@10 {ndcg(re_q):.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
