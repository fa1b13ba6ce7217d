"""BiDR training on DBpedia MiniLM: recall@10 vs exact search at equal bytes and over-fetch.

Compares ``PQ48,Rerank(Flat)`` with faiss' k-means codebooks (the baseline) against the same
index with BiDR's contrastively trained codebooks (stage 1), and with stage 2's dense map as
well, at k_factor 1 / 2 / 3 / 5 / 10 (48-byte codes both; same number of re-ranked candidates).

Training supervision: pseudo-queries (1,000 corpus rows, positives = their exact top-10
neighbours, self excluded) — DBpedia has only 50 judged queries. Evaluation: the 1,000
held-out corpus vectors (never in the corpus, never trained on) against exact search.

Run: ``PYTHONPATH=src python benchmarks/bidr_dbpedia.py [--pq-epochs 3] [--dense-epochs 1]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from embedlab.data.retrieval import load_retrieval
from embedlab.index import index_factory
from embedlab.index._base import VectorIndex, l2_normalize
from embedlab.training.bidr import BiDRModel, pseudo_queries, train_bidr


def recall_at_10(index: VectorIndex, q: np.ndarray, exact: np.ndarray, k_factor: int) -> float:
    """Mean |top-10 ∩ exact top-10| / 10."""
    _, ids = index.search(q, 10, k_factor=k_factor)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact, strict=True)]))


def main() -> None:
    """Train, build and compare; prints one table."""
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="beir:../shared/data/beir-mini/dbpedia")
    p.add_argument("--m", type=int, default=48)
    p.add_argument("--pq-epochs", type=int, default=3)
    p.add_argument("--dense-epochs", type=int, default=1)
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-hard", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(1)
    data = load_retrieval(a.data)
    x, hq = l2_normalize(data.corpus), l2_normalize(data.holdout)
    exact = np.argsort(-(hq.astype(np.float64) @ x.T.astype(np.float64)), 1, kind="stable")[:, :10]
    rows, pos = pseudo_queries(x, n_queries=a.n_train, k=10, seed=a.seed)
    t0 = time.time()
    model = train_bidr(
        x,
        x[rows],
        pos,
        query_rows=rows,
        m=a.m,
        pq_epochs=a.pq_epochs,
        dense_epochs=a.dense_epochs,
        n_hard=a.n_hard,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
    )
    print(f"trained in {time.time() - t0:.0f} s; losses {model.history}")
    stage1 = BiDRModel(model.codebooks, np.eye(x.shape[1], dtype=np.float32), "cos")
    base = index_factory(x.shape[1], f"PQ{a.m},Rerank(Flat)", metric="cos", seed=a.seed)
    base.train(x)
    base.add(x)
    indexes = {
        f"faiss PQ{a.m}+rerank": base,
        "BiDR stage 1 (PQ)": stage1.build_index(x),
        "BiDR stage 1+2": model.build_index(x),
    }
    kfs = (1, 2, 3, 5, 10)
    print(f"{'method':24s} bytes " + " ".join(f"kf={k:<3d}" for k in kfs))
    for name, idx in indexes.items():
        rec = [recall_at_10(idx, hq, exact, k) for k in kfs]
        bytes_ = idx.base.code_bytes  # type: ignore[attr-defined]
        print(f"{name:24s} {bytes_:5d} " + " ".join(f"{r:.3f} " for r in rec))


if __name__ == "__main__":
    main()
