from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from embedlab.bench import read_records, write_records
from embedlab.bench.retrieval import (
    DEFAULT_METHODS,
    RETRIEVAL_COLUMNS,
    RetrievalBenchConfig,
    exact_search,
    ndcg_at_k,
    parse_methods,
    qrels_recall_at_k,
    recall_at_k,
    resolve_method,
    retrieval_summary_rows,
    run_retrieval_bench,
)
from embedlab.cli.retrieval import bench_retrieval
from embedlab.data.retrieval import RetrievalData

HAS_FACTORY = importlib.util.find_spec("embedlab.index") is not None and (
    importlib.util.find_spec("embedlab.index.factory") is not None
)

# -- metrics against naive loops -------------------------------------------------------------


def naive_top(corpus: np.ndarray, q: np.ndarray, k: int, metric: str) -> list[list[int]]:
    out = []
    for v in q:
        scores = []
        for i, x in enumerate(corpus):
            if metric == "cos":
                s = float(v @ x / (np.linalg.norm(v) * np.linalg.norm(x)))
            elif metric == "ip":
                s = float(v @ x)
            else:
                s = -float(((v - x) ** 2).sum())
            scores.append((-s, i))
        out.append([i for _, i in sorted(scores)[:k]])
    return out


@pytest.mark.parametrize("metric", ["cos", "ip", "l2"])
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_search_matches_naive(metric: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    corpus = rng.normal(size=(40, 5)).astype(np.float32)
    q = rng.normal(size=(7, 5)).astype(np.float32)
    scores, rows = exact_search(corpus, q, 6, metric=metric, block=3)  # type: ignore[arg-type]
    assert rows.tolist() == naive_top(corpus, q, 6, metric)
    assert np.all(np.diff(scores, axis=1) <= 1e-6)


def test_exact_search_pads_and_breaks_ties_by_row() -> None:
    corpus = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    scores, rows = exact_search(corpus, np.array([[1.0, 0.0]]), 5)
    assert rows.tolist() == [[0, 1, 2, -1, -1]]
    assert np.isneginf(scores[0, 3:]).all()


def test_recall_at_k_matches_naive() -> None:
    rng = np.random.default_rng(0)
    truth = np.array([rng.permutation(50)[:10] for _ in range(20)])
    found = np.array([rng.permutation(50)[:10] for _ in range(20)])
    found[:, 0] = truth[:, 0]
    naive = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall_at_k(found, truth, 10) == pytest.approx(naive)
    assert recall_at_k(truth, truth, 10) == 1.0
    # -1 padding is ignored on both sides
    assert recall_at_k(np.array([[3, -1]]), np.array([[3, -1]]), 2) == 1.0
    assert recall_at_k(np.array([[-1, -1]]), np.array([[3, 4]]), 2) == 0.0


def naive_ndcg(ranked: list[str], judged: dict[str, int], k: int) -> float:
    dcg = 0.0
    for i, d in enumerate(ranked[:k], start=1):
        dcg += judged.get(d, 0) / math.log2(i + 1)
    ideal = sorted(judged.values(), reverse=True)
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal[:k], start=1))
    return dcg / idcg


def test_ndcg_matches_naive_and_sklearn() -> None:
    rng = np.random.default_rng(3)
    docs = [f"d{i}" for i in range(30)]
    qrels: dict[str, dict[str, int]] = {}
    ranked: list[list[str]] = []
    y_true = np.zeros((5, 30))
    y_score = rng.normal(size=(5, 30))
    for q in range(5):
        judged = {f"d{i}": int(rng.integers(0, 3)) for i in rng.choice(30, 8, replace=False)}
        judged[f"d{q}"] = 2  # at least one relevant
        qrels[f"q{q}"] = judged
        for d, g in judged.items():
            y_true[q, int(d[1:])] = g
        ranked.append([docs[i] for i in np.argsort(-y_score[q])])
    qids = [f"q{q}" for q in range(5)]
    ours = ndcg_at_k(ranked, qids, qrels, k=10)
    naive = np.mean([naive_ndcg(r, qrels[q], 10) for r, q in zip(ranked, qids, strict=True)])
    assert ours == pytest.approx(naive)
    sk = pytest.importorskip("sklearn.metrics")
    assert ours == pytest.approx(sk.ndcg_score(y_true, y_score, k=10))


def test_ndcg_and_qrels_recall_edge_cases() -> None:
    qrels = {"a": {"x": 2, "y": 1, "z": 0}, "b": {"z": 0}}
    # perfect order, then queries without any relevant document are left out
    assert ndcg_at_k([["x", "y"], ["z"]], ["a", "b"], qrels) == pytest.approx(1.0)
    assert ndcg_at_k([["y", "x"]], ["a"], qrels) == pytest.approx(
        (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    )
    assert math.isnan(ndcg_at_k([["z"]], ["b"], qrels))
    assert qrels_recall_at_k([["x", "z", "q"]], ["a"], qrels) == 0.5
    assert qrels_recall_at_k([["x", "q"]], ["a"], qrels, k=1) == 0.5


# -- methods and config ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "spec"),
    [
        ("flat", "Flat"),
        ("INT8", "Int8"),
        ("binary", "Binary"),
        ("binary_rerank", "Binary,Rerank(Flat)"),
        ("bebr1", "BEBR1"),
        ("bebr2", "BEBR2"),
        ("pq48", "PQ48"),
        ("pq16", "PQ16"),
        ("opq48", "OPQ48"),
        ("bigranular", "OPQ48,Rerank(Flat)"),
        ("matryoshka", "Matryoshka128"),
        ("matryoshka64", "Matryoshka64"),
        ("PQ32,Rerank(Flat)", "PQ32,Rerank(Flat)"),
    ],
)
def test_resolve_method(alias: str, spec: str) -> None:
    assert resolve_method(alias) == spec


def test_parse_methods() -> None:
    assert parse_methods("flat,Binary,Rerank(Flat),pq48") == [
        "Flat",
        "Binary,Rerank(Flat)",
        "PQ48",
    ]
    assert parse_methods("PQ8,Rerank(Flat);int8") == ["PQ8,Rerank(Flat)", "Int8"]
    with pytest.raises(ValueError, match="empty entry in list"):
        parse_methods("flat;;int8")
    with pytest.raises(ValueError, match="empty entry in list"):
        parse_methods("flat,,int8")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0}, ValueError, "k must be >= 1, got 0"),
        ({"k": 100}, ValueError, "k must not be 100"),
        ({"k": 2.5}, TypeError, "k must be an integer"),
        ({"metric": "dot"}, ValueError, "metric must be one of cos, ip, l2; got 'dot'"),
        ({"methods": []}, ValueError, "methods must be a non-empty list"),
        ({"methods": "flat"}, ValueError, "methods must be a non-empty list"),
        ({"methods": ["flat", "Flat"]}, ValueError, "methods must not repeat, got Flat"),
        ({"methods": [" "]}, ValueError, "method must be a non-empty index spec"),
        ({"seed": -1}, ValueError, "seed must be >= 0, got -1"),
        ({"latency_queries": 0}, ValueError, "latency_queries must be >= 1, got 0"),
        ({"repeats": 0}, ValueError, "repeats must be >= 1, got 0"),
    ],
)
def test_config_errors(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        RetrievalBenchConfig(**kwargs)


def test_config_defaults() -> None:
    config = RetrievalBenchConfig()
    assert list(config.methods) == list(DEFAULT_METHODS) and config.k == 10


# -- the suite with a local index ------------------------------------------------------------


class ExactIndex:
    """float32 brute force in the index protocol (the contract of embedlab.index)."""

    def __init__(self, dim: int, *, metric: str = "cos", keep: int | None = None) -> None:
        self.dim, self.metric, self.keep = dim, metric, keep
        self.x = np.zeros((0, dim), dtype=np.float32)

    def train(self, x: np.ndarray) -> None:
        pass

    def add(self, x: np.ndarray, ids: np.ndarray | None = None) -> None:
        self.x = np.vstack([self.x, x]).astype(np.float32)

    def search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        x, qq = self.x, np.asarray(q, dtype=np.float32)
        if self.keep is not None:  # a lossy "truncated" index
            x, qq = x[:, : self.keep], qq[:, : self.keep]
        return exact_search(x, qq, k, metric=self.metric)  # type: ignore[arg-type]

    def memory_bytes(self) -> int:
        return int(self.x.nbytes if self.keep is None else self.x[:, : self.keep].nbytes)

    def disk_bytes(self) -> int:
        return 0


def local_factory(dim: int, spec: str, *, metric: str = "cos") -> ExactIndex:
    if spec == "Flat":
        return ExactIndex(dim, metric=metric)
    if spec.startswith("Trunc"):
        return ExactIndex(dim, metric=metric, keep=int(spec[5:]))
    raise ValueError(f"unknown index spec {spec!r}")


def clustered(seed: int = 0, n: int = 300, d: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(12, d))
    x = centers[rng.integers(0, 12, n)] + 0.3 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_data(seed: int = 0) -> RetrievalData:
    x = clustered(seed)
    q = clustered(seed + 10, n=12)
    ids = [f"d{i}" for i in range(250)]
    _, top = exact_search(x[:250], q, 3)
    qrels = {f"q{j}": {ids[top[j, 0]]: 2, ids[top[j, 1]]: 1, ids[top[j, 2]]: 0} for j in range(12)}
    return RetrievalData(
        "toy", x[:250], ids, q, [f"q{j}" for j in range(12)], qrels,
        holdout=x[250:], holdout_ids=[f"d{i}" for i in range(250, 300)],
    )  # fmt: skip


def test_bench_with_local_index(tmp_path: Path) -> None:
    data = make_data()
    seen: list[str] = []
    config = RetrievalBenchConfig(
        methods=["flat", "Trunc4", "Nope"], k=10, progress=False, latency_queries=5
    )
    records = run_retrieval_bench(
        data, config, factory=local_factory, on_record=lambda r: seen.append(r.method)
    )
    assert seen == ["Flat", "Trunc4", "Nope"]
    flat, trunc, nope = records
    assert flat.suite == "retrieval" and flat.dataset == "toy" and flat.model == "vectors"
    assert flat.status == "ok" and flat.memory_bytes == 4 * 16 and flat.compression == 1.0
    assert flat.metrics["recall@10"] == 1.0
    assert flat.metrics["ndcg@10"] == pytest.approx(1.0)
    assert flat.metrics["ndcg@10_vs_flat"] == pytest.approx(1.0)
    assert flat.metrics["recall@100"] == 1.0
    assert set(flat.timing) == {
        "build_s", "train_s", "qps_1thread", "qps_all_threads", "p50_ms", "p99_ms",
    }  # fmt: skip
    assert all(v >= 0 for v in flat.timing.values())
    assert flat.params["ram_bytes_total"] == 250 * 64 and flat.params["n_exact_queries"] == 50
    assert flat.params["n_corpus"] == 250 and flat.params["n_queries"] == 12
    assert flat.params["disk_bytes_per_vector"] == 0.0
    assert trunc.status == "ok" and trunc.memory_bytes == 16 and trunc.compression == 4.0
    assert 0.05 < trunc.metrics["recall@10"] < 0.9  # lossy: 4 of 16 dims
    assert trunc.metrics["ndcg@10_vs_flat"] < 1.0
    assert nope.status == "failed" and nope.error == "ValueError: unknown index spec 'Nope'"
    assert nope.metrics == {} and nope.memory_bytes is None
    # records are valid JSON lines and the summary shows every method
    path = tmp_path / "runs.jsonl"
    write_records(path, records)
    assert [r.method for r in read_records(path)] == ["Flat", "Trunc4", "Nope"]
    # the report plots recall@10 against bytes per vector
    from embedlab.report import render_report

    page = render_report(records, tmp_path / "report")
    assert "recall@10" in page.read_text()
    rows = retrieval_summary_rows(records)
    assert all(len(r) == len(RETRIEVAL_COLUMNS) for r in rows)
    assert rows[0][4] == "1.0000" and rows[2][-1] == "failed"


def test_bench_without_qrels_and_no_queries() -> None:
    x = clustered(1, n=60)
    data = RetrievalData(
        "v", x[:50], [str(i) for i in range(50)], x[50:], [f"q{i}" for i in range(10)]
    )
    config = RetrievalBenchConfig(methods=["flat"], k=5, progress=False, latency_queries=3)
    (rec,) = run_retrieval_bench(data, config, factory=local_factory)
    assert rec.metrics == {"recall@5": 1.0} and rec.params["exact_queries"] == "queries"
    empty = RetrievalData("v", x[:50], [str(i) for i in range(50)], x[:0], [])
    with pytest.raises(ValueError, match="v: no queries to measure"):
        run_retrieval_bench(empty, config, factory=local_factory)


@pytest.mark.skipif(not HAS_FACTORY, reason="embedlab.index.factory not there yet")
def test_bench_with_real_factory() -> None:
    data = make_data(2)
    config = RetrievalBenchConfig(
        methods=["flat", "int8", "Binary,Rerank(Flat)", "NotAnIndex"],
        progress=False,
        latency_queries=3,
    )
    records = {r.method: r for r in run_retrieval_bench(data, config)}
    flat = records["Flat"]
    assert flat.status == "ok", flat.error
    assert flat.metrics["recall@10"] == pytest.approx(1.0, abs=0.01)
    assert flat.memory_bytes is not None and flat.memory_bytes >= 64
    for spec in ("Int8", "Binary,Rerank(Flat)"):
        rec = records[spec]
        if rec.status == "ok":
            assert rec.metrics["recall@10"] > 0.5, spec
    assert records["NotAnIndex"].status == "failed"


# -- CLI -------------------------------------------------------------------------------------


def cli_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """bench"""

    app.command("retrieval")(bench_retrieval)
    return app


def test_cli_bench_retrieval_npy(tmp_path: Path) -> None:
    np.save(tmp_path / "vecs.npy", clustered(0, n=120))
    out = tmp_path / "runs.jsonl"
    args = [
        "retrieval", "--data", f"npy:{tmp_path / 'vecs.npy'}", "--n-holdout", "20", "--k", "5",
        "--json", str(out), "--quiet", "--methods",
    ]  # fmt: skip
    bad = CliRunner().invoke(cli_app(), [*args, "flat,NoSuch"])
    assert bad.exit_code == 2 and "index spec token 'NoSuch' does not parse" in bad.output
    assert not out.exists()  # a bad spec is found before anything runs
    result = CliRunner().invoke(cli_app(), [*args, "flat"])
    assert result.exit_code == 0, result.output
    records = read_records(out)
    assert [r.method for r in records] == ["Flat"]
    assert "retrieval · vecs · vectors · k 5" in result.stdout
    if HAS_FACTORY:
        assert records[0].status == "ok" and records[0].metrics["recall@5"] > 0.99


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--data", "nope"], "unknown retrieval data source 'nope'"),
        (["--data", "npy:/does/not/exist.npy"], "data path does not exist"),
        (["--k", "0"], "k must be >= 1, got 0"),
        (["--metric", "dot"], "metric must be one of cos, ip, l2"),
    ],
)
def test_cli_bench_retrieval_errors(tmp_path: Path, args: list[str], match: str) -> None:
    result = CliRunner().invoke(cli_app(), ["retrieval", *args, "--quiet"])
    assert result.exit_code == 2
    assert match in " ".join(result.output.split())
