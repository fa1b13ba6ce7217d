"""The retrieval suite: every compressed index on the same vectors, recall vs bytes per vector.

Protocol (issue 4, part 4). Exact search (numpy, brute force on the same metric) gives the
ground truth. For each method spec the index is built (``train`` + ``add``, timed) and
measured on:

- ``recall@{k}`` — the overlap of its top ``k`` with the exact top ``k``, averaged over the
  *exact queries*: the held-out corpus vectors, or the real queries when there are none;
- ``ndcg@10`` and ``recall@100`` — from graded qrels on the real queries, where qrels exist
  (standard nDCG: gain = grade, discount ``1 / log2(rank + 1)``, ideal ordering from all
  judged documents of the query; recall@100 counts documents with grade > 0). Queries
  without any document of grade > 0 are left out of both. ``ndcg@10_vs_flat`` divides by
  the nDCG@10 of exact search;
- RAM bytes per vector (``memory_bytes() / n``) in ``memory_bytes``, disk bytes per vector
  in ``params``;
- ``build_s`` / ``train_s``; ``qps_1thread`` and ``qps_all_threads`` (a batched search of
  all exact queries with torch, faiss and BLAS limited to 1 thread, and with the default
  threads; the fastest of ``repeats`` runs); ``p50_ms`` / ``p99_ms`` latency of one-query
  searches over the first ``latency_queries`` exact queries, single-threaded (a server
  answers one query per core; multi-threaded one-row searches measure thread wake-ups).

A method that raises (not registered, cannot train, ...) gives a ``status="failed"``
record carrying the error; the run goes on.

Method names may be aliases (case-insensitive), see :data:`METHOD_ALIASES`; anything else is
passed to the index factory unchanged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from embedlab._registry import split_specs
from embedlab._validation import check_choice, check_int
from embedlab.bench._record import BenchRecord
from embedlab.bench._retrieval_grid import run_retrieval_bench
from embedlab.bench._summary import format_bytes

__all__ = [
    "DEFAULT_METHODS",
    "METHOD_ALIASES",
    "RETRIEVAL_COLUMNS",
    "IndexFactory",
    "RetrievalBenchConfig",
    "exact_search",
    "ndcg_at_k",
    "parse_methods",
    "qrels_recall_at_k",
    "recall_at_k",
    "resolve_method",
    "retrieval_summary_rows",
    "run_retrieval_bench",
]

#: builds an index as ``factory(dim, spec, metric=..., seed=...)`` (``seed`` is dropped when
#: no stage takes one), like :func:`embedlab.index.index_factory`, the default
IndexFactory = Callable[..., Any]
Metric = Literal["cos", "ip", "l2"]

DEFAULT_METHODS: tuple[str, ...] = (
    "Flat",
    "Int8",
    "Binary",
    "Binary,Rerank(Flat)",
    "BEBR1",
    "BEBR2",
    "PQ48",
    "OPQ48",
    "PQ48,Rerank(Flat)",
    "Matryoshka128",
)

#: Short names accepted by ``--methods`` (lower case); ``pqM``, ``opqM``, ``bebrU``, ``baeB``,
#: ``itqB``, ``matryoshkaD`` and ``bidr_pqM`` work for any number (``bidr_pqM`` is BiDR trained
#: on the corpus's pseudo-queries, see :mod:`embedlab.bench._bidr_method`). ``bigranular`` is
#: the BiDR design untrained: OPQ codes in RAM, full vectors on disk for re-ranking.
#: ``matryoshka`` is the funnel on the first 128 dims (it re-scores with all dims itself).
METHOD_ALIASES: dict[str, str] = {
    "flat": "Flat",
    "int8": "Int8",
    "binary": "Binary",
    "binary_rerank": "Binary,Rerank(Flat)",
    "binary_asym_rerank": "Binary,Rerank(Flat)",
    "binary_hamming_rerank": "Binary(scoring=hamming),Rerank(Flat)",
    "bebr": "BEBR2",
    "bebr1": "BEBR1",
    "bebr2": "BEBR2",
    "pq": "PQ48",
    "pq48": "PQ48",
    "opq": "OPQ48",
    "opq48": "OPQ48",
    "pq_rerank": "PQ48,Rerank(Flat)",
    "bigranular": "OPQ48,Rerank(Flat)",
    "matryoshka": "Matryoshka128",
    "hnsw": "HNSW32",
    "hnsw_int8": "HNSW32,Int8",
    "ivf_flat": "IVF1024,Flat",
    "ivf_pq": "IVF1024,PQ48,Rerank(Flat)",
    "ivf_binary_rerank": "IVF1024,Binary,Rerank(Flat)",
}
_NUMBERED = re.compile(r"^(pq|opq|bebr|bae|itq|matryoshka|bidr_pq)(\d+)$")
_NUMBERED_SPEC = {
    "pq": "PQ",
    "opq": "OPQ",
    "bebr": "BEBR",
    "bae": "BAE",
    "itq": "ITQ",
    "matryoshka": "Matryoshka",
    "bidr_pq": "BiDR",
}
_QRELS_K = 100
_NDCG_K = 10


def resolve_method(name: str) -> str:
    """An alias (``"bigranular"``, ``"pq32"``) -> its index spec; other text is kept as is.

    Example:
        >>> resolve_method("bigranular"), resolve_method("pq32"), resolve_method("Int8")
        ('OPQ48,Rerank(Flat)', 'PQ32', 'Int8')
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"method must be a non-empty index spec or alias, got {name!r}")
    key = name.strip().lower()
    if key in METHOD_ALIASES:
        return METHOD_ALIASES[key]
    m = _NUMBERED.match(key)
    if m is not None:
        return f"{_NUMBERED_SPEC[m.group(1)]}{m.group(2)}"
    return name.strip()


def parse_methods(text: str) -> list[str]:
    """Split a ``--methods`` list and resolve aliases.

    Entries are separated by ``;`` when the text holds one, else by commas outside
    parentheses; with commas a ``Rerank(...)`` entry joins the one before it, so
    ``"flat,Binary,Rerank(Flat),pq48"`` gives ``Flat``, ``Binary,Rerank(Flat)``, ``PQ48``.
    """
    if ";" in text:
        parts = [p.strip() for p in text.split(";")]
        if any(not p for p in parts):
            raise ValueError(f"empty entry in list {text!r}")
    else:
        parts = []
        for token in split_specs(text):
            if token.lower().startswith("rerank") and parts:
                parts[-1] = f"{parts[-1]},{token}"
            else:
                parts.append(token)
    return [resolve_method(p) for p in parts]


@dataclass
class RetrievalBenchConfig:
    """What the retrieval suite runs.

    Args:
        methods: index specs or aliases (resolved on construction).
        k: cut-off of recall against exact search (``recall@{k}``); not 100, the key of
            the qrels recall.
        metric: ``"cos"``, ``"ip"`` or ``"l2"``.
        seed: seeds torch and numpy before each build, and is passed as ``seed=`` to the
            factory (dropped for specs none of whose stages takes a seed).
        progress: a progress line while methods run.
        latency_queries: how many one-query searches the latency percentiles use.
        repeats: batched searches per thread setting; QPS uses the fastest (noisy machines).
    """

    methods: Sequence[str] = DEFAULT_METHODS
    k: int = 10
    metric: Metric = "cos"
    seed: int = 0
    progress: bool = True
    latency_queries: int = 200
    repeats: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.methods, str) or not self.methods:
            raise ValueError(f"methods must be a non-empty list of specs, got {self.methods!r}")
        self.methods = [resolve_method(m) for m in self.methods]
        dup = sorted({m for m in self.methods if self.methods.count(m) > 1})
        if dup:
            raise ValueError(f"methods must not repeat, got {', '.join(dup)} twice")
        check_int("k", self.k, min_value=1)
        if self.k == _QRELS_K:
            raise ValueError(
                "k must not be 100: recall@100 is the qrels recall; use e.g. 99 or 101, got 100"
            )
        self.metric = check_choice("metric", self.metric, ("cos", "ip", "l2"))  # type: ignore[assignment]
        check_int("seed", self.seed, min_value=0)
        check_int("latency_queries", self.latency_queries, min_value=1)
        check_int("repeats", self.repeats, min_value=1)


# -- metrics ---------------------------------------------------------------------------------


def exact_search(
    corpus: np.ndarray, queries: np.ndarray, k: int, *, metric: Metric = "cos", block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top ``k``: ``(scores, rows)`` of shape ``(n_q, k)``, best first.

    Scores are higher-is-better (cosine, inner product, or minus the squared L2 distance);
    ties go to the lower row; ``k > n`` pads with row ``-1`` and score ``-inf``.
    """
    check_int("k", k, min_value=1)
    x = np.asarray(corpus, dtype=np.float32)
    q = np.asarray(queries, dtype=np.float32)
    if metric == "cos":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    n = x.shape[0]
    kk = min(k, n)
    scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
    rows = np.full((q.shape[0], k), -1, dtype=np.int64)
    x_sq = (x * x).sum(axis=1)
    for start in range(0, q.shape[0], block):
        qb = q[start : start + block]
        s = qb @ x.T  # (b, n)
        if metric == "l2":
            s = 2 * s - x_sq[None, :] - (qb * qb).sum(axis=1, keepdims=True)
        part = (
            np.argpartition(-s, kk - 1, axis=1)[:, :kk]
            if kk < n
            else np.tile(np.arange(n), (len(qb), 1))
        )
        ps = np.take_along_axis(s, part, axis=1)
        order = np.lexsort((part, -ps), axis=1)  # by score desc, then row asc
        scores[start : start + len(qb), :kk] = np.take_along_axis(ps, order, axis=1)
        rows[start : start + len(qb), :kk] = np.take_along_axis(part, order, axis=1)
    return scores, rows


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean over queries of ``|found[:, :k] ∩ truth[:, :k]| / |truth[:, :k]|`` (``-1`` ignored)."""
    found = np.asarray(found)[:, :k]
    truth = np.asarray(truth)[:, :k]
    if truth.shape[0] == 0:
        return float("nan")
    total = 0.0
    for f, t in zip(found, truth, strict=True):
        t_set = {int(i) for i in t if i >= 0}
        if t_set:
            total += len(t_set.intersection(int(i) for i in f if i >= 0)) / len(t_set)
        else:
            total += 1.0
    return float(total / truth.shape[0])


def _dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at_k(
    ranked: Sequence[Sequence[str]],
    query_ids: Sequence[str],
    qrels: Mapping[str, Mapping[str, int]],
    k: int = _NDCG_K,
) -> float:
    """Mean nDCG@k over queries with at least one document of grade > 0.

    Args:
        ranked: per query, retrieved document ids best first.
        query_ids: the query of each ``ranked`` row.
        qrels: ``{query_id: {doc_id: grade}}``; unjudged documents have gain 0.

    Returns:
        The mean, or NaN when no query has a relevant document.
    """
    values: list[float] = []
    for qid, docs in zip(query_ids, ranked, strict=True):
        judged = qrels.get(qid, {})
        ideal = _dcg(sorted((g for g in judged.values() if g > 0), reverse=True)[:k])
        if ideal <= 0:
            continue
        values.append(_dcg([max(judged.get(d, 0), 0) for d in list(docs)[:k]]) / ideal)
    return float(np.mean(values)) if values else float("nan")


def qrels_recall_at_k(
    ranked: Sequence[Sequence[str]],
    query_ids: Sequence[str],
    qrels: Mapping[str, Mapping[str, int]],
    k: int = _QRELS_K,
) -> float:
    """Mean over queries of the fraction of their grade > 0 documents in the top ``k``."""
    values: list[float] = []
    for qid, docs in zip(query_ids, ranked, strict=True):
        relevant = {d for d, g in qrels.get(qid, {}).items() if g > 0}
        if relevant:
            values.append(len(relevant.intersection(list(docs)[:k])) / len(relevant))
    return float(np.mean(values)) if values else float("nan")


def _to_doc_ids(rows: np.ndarray, ids: Sequence[str]) -> list[list[str]]:
    n = len(ids)
    return [[ids[int(i)] for i in r if 0 <= i < n] for r in rows]


# -- summary ---------------------------------------------------------------------------------

#: Columns of the printed summary: RAM and disk bytes per vector, × = float32 bytes / RAM,
#: R@k = recall@k against exact search, /flat = nDCG@10 over exact search's nDCG@10,
#: R@100 = recall@100 from qrels, QPS with 1 thread and all threads, latency in ms.
RETRIEVAL_COLUMNS: tuple[str, ...] = (
    "method",
    "RAM",
    "×",
    "disk",
    "R@k",
    "nDCG@10",
    "/flat",
    "R@100",
    "build s",
    "QPS 1t",
    "QPS all",
    "p50 ms",
    "p99 ms",
    "status",
)


def _f(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def retrieval_summary_rows(records: Sequence[BenchRecord]) -> list[tuple[str, ...]]:
    """One row of strings per record, in :data:`RETRIEVAL_COLUMNS` order."""
    rows: list[tuple[str, ...]] = []
    for r in records:
        if r.status != "ok":
            rows.append((r.method, *("-",) * (len(RETRIEVAL_COLUMNS) - 2), r.status))
            continue
        k = r.params.get("k", 10)
        rows.append(
            (
                r.method,
                format_bytes(r.params.get("ram_bytes_per_vector", r.memory_bytes)),
                _f(r.compression, ".1f"),
                format_bytes(r.params.get("disk_bytes_per_vector")),
                _f(r.metrics.get(f"recall@{k}"), ".4f"),
                _f(r.metrics.get("ndcg@10"), ".4f"),
                _f(r.metrics.get("ndcg@10_vs_flat"), ".3f"),
                _f(r.metrics.get("recall@100"), ".4f"),
                _f(r.timing.get("build_s"), ".1f"),
                _f(r.timing.get("qps_1thread"), ",.0f"),
                _f(r.timing.get("qps_all_threads"), ",.0f"),
                _f(r.timing.get("p50_ms"), ".2f"),
                _f(r.timing.get("p99_ms"), ".2f"),
                r.status,
            )
        )
    return rows
