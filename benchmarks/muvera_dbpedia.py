"""MUVERA on ../shared/data/beir-mini/dbpedia with MiniLM token embeddings (issue 5, part 1).

Data: the 5,000 DBpedia-entity documents as MiniLM token matrices (384-d per word piece,
special tokens dropped, L2-normalised, documents capped at 64 word pieces, queries at 32; see
``embedlab.data.multivector``; cached under $EMBEDLAB_CACHE or ~/.cache/embedlab).
Queries: the 50 BEIR queries are few for a stable recall, so ``--n-holdout`` (default 200)
corpus documents, drawn by ``--seed`` among those no qrels row names, are removed from the
corpus and used as extra queries (their text encoded as a query: first 32 word pieces).
Recall is reported on all queries and on the BEIR queries alone.

Ground truth: exact Chamfer top-10 by brute force (``chamfer_search``), timed in the same
run: that is the brute-force queries/s.

MUVERA: for the paper's grid points (R, k_sim, d_proj) = (20,5,16), (20,4,16), (20,4,8),
(10,4,8): ``MUVERA(r=R,k=K,p=P),Rerank(Chamfer)`` (FDEs in an exact Flat index, document
vectors memory-mapped on disk); recall@10 after exact Chamfer re-ranking of the C best FDE
candidates, C in (10, 20, 50, 100, 200, 500, 1000), and end-to-end queries/s (query FDEs +
FDE search + re-ranking) at each C.

Single-vector heuristic: every document vector in an exact Flat index; each query vector
fetches its k' nearest document vectors; the distinct documents (the candidates) are
re-ranked with exact Chamfer; k' swept over (1, 2, 4, ..., 256). Its candidate count is the
mean number of distinct documents re-ranked per query.

The measurements are ``embedlab.bench.retrieval_extra.run_multivector_bench`` (also
``embedlab bench retrieval --multivector``); this script adds the refinement of C, the
crossings, the head-to-head timing and the printout.

Usage:
    python benchmarks/muvera_dbpedia.py [--data DIR] [--n-holdout 200] [--json OUT.jsonl]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedlab.bench import BenchRecord, write_records
from embedlab.bench.retrieval_extra import concat_sets, run_multivector_bench
from embedlab.data.multivector import TokenSets, load_multivector
from embedlab.index.chamfer import chamfer_search, pack_sets
from embedlab.index.muvera import MUVERA

ROOT = Path(__file__).resolve().parents[1]
DBPEDIA = ROOT.parent / "shared" / "data" / "beir-mini" / "dbpedia"
GRID = ((20, 5, 16), (20, 4, 16), (20, 4, 8), (10, 4, 8))
CANDIDATES = (10, 20, 50, 100, 200, 500, 1000)
K_PRIMES = (1, 2, 4, 8, 12, 16, 20, 24, 32, 64, 128, 256)
TARGET = 0.9
HEAD_TO_HEAD = 50


@dataclass
class Point:
    """One measured operating point."""

    candidates: float  # C for MUVERA; mean distinct documents for the heuristic
    recall: float
    recall_beir: float
    qps: float


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    hits = [len(set(f[f >= 0]) & set(t)) / k for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def first_reaching(points: list[Point]) -> Point | None:
    ok = [p for p in points if p.recall >= TARGET]
    return min(ok, key=lambda p: p.candidates) if ok else None


def queries_subset(sets: TokenSets, rows: np.ndarray) -> TokenSets:
    return sets.select(np.sort(rows))


def crossing(points: list[Point], beir: bool = False) -> float | None:
    """Candidates at which recall reaches TARGET, interpolated linearly in log(candidates)
    between the last grid point below and the first at or above (None: never reached)."""
    rec = [p.recall_beir if beir else p.recall for p in points]
    for i, (p, r) in enumerate(zip(points, rec, strict=True)):
        if r >= TARGET:
            if i == 0:
                return p.candidates
            p0, r0 = points[i - 1], rec[i - 1]
            frac = (TARGET - r0) / (r - r0)
            return float(
                np.exp(np.log(p0.candidates) + frac * np.log(p.candidates / p0.candidates))
            )
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DBPEDIA)
    parser.add_argument("--n-holdout", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        print(f"skip: {args.data} not found (see ../shared/data/README.md)")
        return 0
    k = args.k
    t0 = time.perf_counter()
    data = load_multivector(f"beir:{args.data}", seed=args.seed, n_holdout=args.n_holdout)
    load_s = time.perf_counter() - t0
    assert data.holdout is not None
    queries = concat_sets(data.queries, data.holdout)
    n_beir = len(data.queries)
    corpus = pack_sets(data.corpus, name="corpus")  # validated once, float32
    print(
        f"{data.name}: corpus {len(corpus)} documents, {corpus.vectors.shape[0]:,} token "
        f"vectors x {corpus.dim} (mean {corpus.lengths.mean():.1f}, cap {data.doc_cap}); "
        f"queries: {n_beir} BEIR (mean {data.queries.lengths.mean():.1f} vectors) + "
        f"{len(data.holdout)} held-out documents as queries (mean "
        f"{data.holdout.lengths.mean():.1f}, cap {data.query_cap}); loaded in {load_s:.1f} s"
    )

    indexes: dict[str, MUVERA] = {}
    exact: list[np.ndarray] = []

    def keep(index: MUVERA, _queries: TokenSets, truth: np.ndarray) -> None:
        indexes[index.spec()] = index
        exact[:] = [truth]
        ram, disk = index.memory_bytes() / 2**20, index.disk_bytes() / 2**20
        print(
            f"built {index.spec()}: FDE dim {index.encoder.output_dim}, "
            f"RAM {ram:.0f} MiB, disk {disk:.0f} MiB"
        )

    records = run_multivector_bench(
        data, GRID, CANDIDATES, k, k_primes=K_PRIMES, seed=args.seed, on_index=keep
    )
    truth = exact[0]  # exact Chamfer top-k, for the refinement
    brute = records[0]
    brute_qps = brute.timing["qps"]
    print(f"brute-force Chamfer top-{k}: {brute.timing['search_s']:.1f} s, {brute_qps:.1f} q/s")

    def point(rec: BenchRecord, candidates: float) -> Point:
        return Point(
            candidates,
            rec.metrics[f"recall@{k}"],
            rec.metrics.get(f"recall@{k}_beir", float("nan")),
            rec.timing["qps"],
        )

    def measure_muvera(index: MUVERA, c: int) -> Point:
        t0 = time.perf_counter()
        _, ids = index.search_multi(queries, k, candidates=c)
        search_s = time.perf_counter() - t0
        return Point(
            c,
            recall_at(ids, truth),
            recall_at(ids[:n_beir], truth[:n_beir]),
            len(queries) / search_s,
        )

    results: dict[str, list[Point]] = {}
    refined: dict[str, Point] = {}
    by_name: dict[str, MUVERA] = {}
    h_points: list[Point] = []
    for rec in records[1:]:
        if "k_prime" in rec.params:
            h_points.append(point(rec, rec.params["mean_candidates"]))
            continue
        r, ks, p = rec.params["grid"]
        name = f"MUVERA R={r} k_sim={ks} d_proj={p} (d_FDE={rec.params['fde_dim']})"
        results.setdefault(name, []).append(point(rec, rec.params["candidates"]))
        by_name[name] = indexes[rec.params["spec"]]
    for name, points in results.items():
        # refine: from the interpolated crossing, grow C by 10% until recall >= TARGET
        cross = crossing(points)
        if cross is None:
            continue
        c = int(np.ceil(cross))
        while True:
            pt = measure_muvera(by_name[name], c)
            if pt.recall >= TARGET or c >= CANDIDATES[-1]:
                break
            c = int(np.ceil(c * 1.1))
        refined[name] = pt
    indexes = by_name

    print(
        f"\nrecall@{k} vs exact Chamfer (all {len(queries)} queries | {n_beir} BEIR only) and "
        "end-to-end queries/s, by re-ranked candidates C"
    )
    for name, points in results.items():
        print(f"  {name}")
        for pt in points:
            print(
                f"    C={int(pt.candidates):5d}  recall {pt.recall:.4f} | {pt.recall_beir:.4f}"
                f"  {pt.qps:8.1f} q/s  ({pt.qps / brute_qps:5.1f}x brute force)"
            )
    print(f"  single-vector heuristic (exact Flat over {corpus.vectors.shape[0]:,} vectors)")
    for kp, pt in zip(K_PRIMES, h_points, strict=True):
        print(
            f"    k'={kp:4d}  C={pt.candidates:7.1f}  recall {pt.recall:.4f} | "
            f"{pt.recall_beir:.4f}  {pt.qps:8.1f} q/s  ({pt.qps / brute_qps:5.1f}x)"
        )

    def fmt(c: float | None) -> str:
        return "-" if c is None else f"{c:.0f}"

    print(
        f"\ncandidates needed for recall@{k} >= {TARGET}: measured (MUVERA: C refined from the "
        "grid; heuristic: smallest k' on its grid, C = mean distinct documents), and the "
        "crossing interpolated in log C (all queries | BEIR only)"
    )
    h_best = first_reaching(h_points)
    h_cross, h_cross_b = crossing(h_points), crossing(h_points, beir=True)
    if h_best is not None:
        kp = K_PRIMES[h_points.index(h_best)]
        print(
            f"  single-vector heuristic: k'={kp}, C={h_best.candidates:.1f}, recall "
            f"{h_best.recall:.4f}, {h_best.qps:.1f} q/s; crossing {fmt(h_cross)} | "
            f"{fmt(h_cross_b)}"
        )
    else:
        print("  single-vector heuristic: not reached")
    for name, points in results.items():
        best = refined.get(name)
        cross, cross_b = crossing(points), crossing(points, beir=True)
        if best is None or best.recall < TARGET:
            print(f"  {name}: not reached with C <= {CANDIDATES[-1]}")
            continue
        fewer = ""
        if h_best is not None:
            fewer = f"{h_best.candidates / best.candidates:.2f}x fewer than the heuristic"
            if cross and h_cross and cross_b and h_cross_b:
                fewer += f" (crossings: {h_cross / cross:.2f}x | {h_cross_b / cross_b:.2f}x)"
        print(
            f"  {name}: C={int(best.candidates)}, recall {best.recall:.4f}, {fewer}; "
            f"{best.qps:.1f} q/s = {best.qps / brute_qps:.1f}x brute force (target >= 10x); "
            f"crossing {fmt(cross)} | {fmt(cross_b)}"
        )

    # Same queries, same moment: the machine is shared, so the speed-up is also measured
    # head to head on a random subset, alternating brute force and MUVERA, best of 2 rounds.
    rng = np.random.default_rng(args.seed)
    subset = queries_subset(queries, rng.choice(len(queries), HEAD_TO_HEAD, replace=False))
    chosen = {n: b for n, b in refined.items() if b.recall >= TARGET}
    print(
        f"\nhead to head on {HEAD_TO_HEAD} random queries at the refined C (best of 2 "
        "alternating rounds):"
    )
    t_brute: list[float] = []
    t_mv: dict[str, list[float]] = {n: [] for n in chosen}
    for _ in range(2):
        t0 = time.perf_counter()
        chamfer_search(subset, corpus, k)
        t_brute.append(time.perf_counter() - t0)
        for name, best in chosen.items():
            t0 = time.perf_counter()
            indexes[name].search_multi(subset, k, candidates=int(best.candidates))
            t_mv[name].append(time.perf_counter() - t0)
    print(f"  brute force: {HEAD_TO_HEAD / min(t_brute):.1f} q/s")
    for name, best in chosen.items():
        print(
            f"  {name} at C={int(best.candidates)}: {HEAD_TO_HEAD / min(t_mv[name]):.1f} q/s "
            f"= {min(t_brute) / min(t_mv[name]):.1f}x brute force"
        )
    if args.json is not None:
        write_records(args.json, records)
        print(f"records -> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
