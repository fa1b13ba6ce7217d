"""The issue-4 retrieval protocol on ../shared/data/beir-mini/dbpedia, every registered index.

Data: the 5,000 DBpedia-entity documents embedded with MiniLM (384-d, float32 = 1,536
bytes/vector; cached under $EMBEDLAB_CACHE or ~/.cache/embedlab), queries = the 50 BEIR
queries (nDCG@10, recall@100 from the graded qrels) and, for recall@10 against exact search,
1,000 held-out corpus vectors (removed from the corpus, drawn from documents no qrels row
names, so the searched corpus has 4,000 documents).

Methods: the issue's list (Flat, Int8, Binary, Binary+Rerank, BEBR1, BEBR2, PQ48, OPQ48,
bi-granular OPQ48+Rerank, PQ48+Rerank, Matryoshka128), keeping those whose index classes are
registered at the time (the others are listed as skipped), plus faiss references in the same
run and threads when faiss is installed: ``faiss:BinaryFlat`` (sign bits in
``IndexBinaryFlat``, Hamming scan) and ``faiss:PQ48`` (``IndexPQ`` 48 x 8 bits).

Usage:
    python benchmarks/retrieval_dbpedia.py [--data DIR] [--json OUT.jsonl] [--no-faiss]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.bench import write_records
from embedlab.bench.retrieval import RetrievalBenchConfig, run_retrieval_bench
from embedlab.cli.retrieval import print_retrieval_summary
from embedlab.data.retrieval import load_retrieval

ROOT = Path(__file__).resolve().parents[1]
DBPEDIA = ROOT.parent / "shared" / "data" / "beir-mini" / "dbpedia"
ISSUE_METHODS = (
    "Flat",
    "Int8",
    "Binary",
    "Binary,Rerank(Flat)",
    "BEBR1",
    "BEBR2",
    "PQ48",
    "OPQ48",
    "OPQ48,Rerank(Flat)",
    "PQ48,Rerank(Flat)",
    "Matryoshka128",
)


class FaissReference:
    """faiss ``IndexBinaryFlat`` (sign bits) or ``IndexPQ`` in the index protocol."""

    def __init__(self, dim: int, kind: str, metric: str) -> None:
        import faiss

        self.faiss, self.kind, self.metric = faiss, kind, metric
        if kind == "BinaryFlat":
            self.index: Any = faiss.IndexBinaryFlat(dim)
        else:
            m = int(kind.removeprefix("PQ"))
            self.index = faiss.IndexPQ(dim, m, 8, faiss.METRIC_INNER_PRODUCT)

    def _prep(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.metric == "cos":
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        if self.kind == "BinaryFlat":
            return np.packbits(x > 0, axis=1)
        return x

    def train(self, x: np.ndarray) -> None:
        if self.kind != "BinaryFlat":
            self.index.train(self._prep(x))

    def add(self, x: np.ndarray) -> None:
        self.index.add(self._prep(x))

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        d, i = self.index.search(self._prep(q), k)
        return (-d if self.kind == "BinaryFlat" else d), i

    def memory_bytes(self) -> int:
        n = self.index.ntotal
        per = self.index.code_size
        extra = 0 if self.kind == "BinaryFlat" else self.index.pq.centroids.size() * 4
        return int(n * per + extra)

    def disk_bytes(self) -> int:
        return 0


def make_factory() -> Any:
    from embedlab.index import index_factory

    def factory(dim: int, spec: str, *, metric: str = "cos", **kwargs: Any) -> Any:
        if spec.startswith("faiss:"):
            return FaissReference(dim, spec.removeprefix("faiss:"), metric)
        return index_factory(dim, spec, metric=metric, **kwargs)  # type: ignore[arg-type]

    return factory


def available(methods: tuple[str, ...]) -> tuple[list[str], list[str]]:
    import contextlib
    import importlib

    from embedlab.index import INDEXES

    for module in ("embedlab.index.bebr", "embedlab.index.pq"):  # register files that landed
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    from embedlab.index.factory import parse_index_spec

    keep, skip = [], []
    for spec in methods:
        try:
            names = [name for name, _ in parse_index_spec(spec)]
        except ValueError:
            names = ["?"]
        (keep if all(n in INDEXES for n in names) else skip).append(spec)
    return keep, skip


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DBPEDIA)
    parser.add_argument("--n-holdout", type=int, default=1000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-faiss", action="store_true")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        print(f"skip: {args.data} not found (see ../shared/data/README.md)")
        return 0
    methods, skipped = available(ISSUE_METHODS)
    if not args.no_faiss:
        try:
            import faiss  # noqa: F401

            methods += ["faiss:BinaryFlat", "faiss:PQ48"]
        except ImportError:
            print("faiss not installed: no faiss reference rows")
    data = load_retrieval(f"beir:{args.data}", seed=args.seed, n_holdout=args.n_holdout)
    print(
        f"{data.name}: corpus {data.n_corpus} x {data.dim}, {data.queries.shape[0]} BEIR "
        f"queries ({len(data.qrels or {})} with qrels), {len(data.holdout_ids)} held-out "
        f"queries; methods not registered yet: {', '.join(skipped) or 'none'}"
    )
    config = RetrievalBenchConfig(methods=methods, k=args.k, seed=args.seed)
    records = run_retrieval_bench(data, config, factory=make_factory())
    if args.json is not None:
        write_records(args.json, records)
    print_retrieval_summary(f"retrieval · {data.name} · minilm · k {args.k}", records)

    by = {r.method: r for r in records if r.status == "ok"}
    rk = f"recall@{args.k}"

    def m(method: str, key: str) -> float | None:
        r = by.get(method)
        return None if r is None else r.metrics.get(key)

    def t(method: str, key: str) -> float | None:
        r = by.get(method)
        return None if r is None else r.timing.get(key)

    if "Binary,Rerank(Flat)" in by:
        r = by["Binary,Rerank(Flat)"]
        print(
            f"target Binary,Rerank(Flat): {rk} {r.metrics[rk]:.4f} (>= 0.95) at "
            f"{r.params['ram_bytes_per_vector']:.1f} RAM B/vec (48), nDCG@10 vs flat "
            f"{r.metrics.get('ndcg@10_vs_flat', float('nan')):.3f} (>= 0.97)"
        )
    b1, bin_ = m("BEBR1", rk), m("Binary", rk)
    if b1 is not None and bin_ is not None:
        print(f"target BEBR1 vs Binary {rk} (no rerank): {b1:.4f} vs {bin_:.4f}, {b1 - bin_:+.4f}")
    b2, pq = m("BEBR2", rk), m("PQ48", rk)
    if b2 is not None and pq is not None:
        print(f"BEBR2 vs PQ48 {rk}: {b2:.4f} vs {pq:.4f} (RAM B/vec "
              f"{by['BEBR2'].memory_bytes} vs {by['PQ48'].memory_bytes})")  # fmt: skip
    for ours, ref in (("Binary", "faiss:BinaryFlat"), ("PQ48", "faiss:PQ48")):
        print(
            f"speed {ours} / {ref}: 1 thread {ratio(t(ours, 'qps_1thread'), t(ref, 'qps_1thread'))}"
            f", all threads {ratio(t(ours, 'qps_all_threads'), t(ref, 'qps_all_threads'))} "
            f"(target >= 0.8x); {rk} {fmt(m(ours, rk))} vs {fmt(m(ref, rk))}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
