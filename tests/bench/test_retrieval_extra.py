"""The --filters / --multivector sweeps of the retrieval suite, on tiny synthetic data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from embedlab.bench import read_records
from embedlab.bench.retrieval_extra import (
    BRUTE_FORCE_METHOD,
    DEFAULT_GRID,
    DEFAULT_K_PRIMES,
    column_name,
    exact_filtered_search,
    extra_summary_rows,
    run_filtered_bench,
    run_multivector_bench,
    selectivity_attributes,
)
from embedlab.cli import app
from embedlab.data.multivector import MultiVectorData, TokenSets
from embedlab.data.retrieval import RetrievalData

runner = CliRunner()


def _vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def _data(n: int = 300, n_q: int = 20) -> RetrievalData:
    x, q = _vectors(n), _vectors(n_q, seed=1)
    return RetrievalData("toy", x, [str(i) for i in range(n)], q, [f"q{i}" for i in range(n_q)])


def _sets(n: int, rng: np.random.Generator, dim: int = 16) -> TokenSets:
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(rng.integers(2, 6, n), out=offsets[1:])
    v = rng.standard_normal((int(offsets[-1]), dim)).astype(np.float32)
    return TokenSets(v / np.linalg.norm(v, axis=1, keepdims=True), offsets)


def _tokens(n_docs: int = 60) -> MultiVectorData:
    rng = np.random.default_rng(0)
    return MultiVectorData(
        name="toy-tokens",
        corpus=_sets(n_docs, rng),
        corpus_ids=[str(i) for i in range(n_docs)],
        queries=_sets(5, rng),
        query_ids=[f"q{i}" for i in range(5)],
        holdout=_sets(4, rng),
        holdout_ids=[f"h{i}" for i in range(4)],
    )


def test_filtered_bench_records() -> None:
    sels = (0.5, 0.1, 0.01)
    records = run_filtered_bench(_data(), selectivities=sels, k=10)
    assert len(records) == len(sels) * 5
    assert records[0].method == "filtered:pre@50%"
    assert {r.method for r in records} >= {
        "filtered:auto@1%",
        "filtered:acorn@10%",
        "filtered:hnsw@10%",
    }
    for r in records:
        assert r.suite == "retrieval" and r.status == "ok"
        assert 0.0 <= r.metrics["recall@10"] <= 1.0
        assert r.timing["qps"] > 0
        assert r.params["selectivity"] in sels
        if r.params["strategy"] == "pre":
            assert r.metrics["recall@10"] == 1.0
        if r.params["strategy"] == "auto":
            assert sum(r.params["planner"].values()) == 20
        else:
            assert "planner" not in r.params
        r.to_json()  # JSON-safe
    by_strategy = {r.params["strategy"]: r for r in records if r.params["selectivity"] == 0.5}
    assert by_strategy["hnsw"].metrics["recall@10"] >= 0.9  # measured 1.0 on 400 vectors
    rows = extra_summary_rows(records)
    assert rows[4][0] == "filtered:auto@50%" and rows[4][4]  # planner note


def test_filtered_bench_bad_input() -> None:
    with pytest.raises(ValueError, match="selectivities"):
        run_filtered_bench(_data(), selectivities=(0.0,))
    with pytest.raises(ValueError, match="strategies"):
        run_filtered_bench(_data(), selectivities=(0.5,), strategies=("exact",))


def test_exact_filtered_search_matches_brute_force() -> None:
    x, q = _vectors(200), _vectors(6, seed=2)
    col = selectivity_attributes(200, [0.1])[column_name(0.1)]
    values = np.array([0, 1, 2, 3, 4, 99])  # 99 matches nothing
    rows = exact_filtered_search(x, q, col, values, 5, metric="ip")
    for i, v in enumerate(values):
        match = np.flatnonzero(col == v)
        expect = match[np.argsort(-(x[match] @ q[i]), kind="stable")][:5]
        got = rows[i][rows[i] >= 0]
        assert set(got.tolist()) == set(expect.tolist())
        assert np.all(col[got] == v)
    assert np.all(rows[-1] == -1)


def test_multivector_bench_records() -> None:
    tokens = _tokens(60)
    records = run_multivector_bench(
        tokens, grid=((4, 2, 4), (2, 2, 4)), candidates=(5, 10, 20, 100), k=10, k_primes=(1, 4)
    )
    brute, rest = records[0], records[1:]
    assert brute.method == BRUTE_FORCE_METHOD and brute.metrics["recall@10"] == 1.0
    assert brute.timing["qps"] > 0
    muvera = [r for r in rest if "candidates" in r.params]
    heuristic = [r for r in rest if "k_prime" in r.params]
    assert len(muvera) == 2 * 3  # C=5 < k is skipped
    assert len(heuristic) == 2
    assert len({r.method for r in records}) == len(records)  # one report row each
    for r in rest:
        assert 0.0 <= r.metrics["recall@10"] <= 1.0
        assert 0.0 <= r.metrics["recall@10_beir"] <= 1.0
        assert r.timing["qps"] > 0
        assert r.model == "minilm-tokens" and r.suite == "retrieval"
        r.to_json()
    for r in muvera:
        if r.params["candidates"] >= 60:  # every document re-ranked exactly
            assert r.metrics["recall@10"] == 1.0
    assert all(not math.isnan(float(row[2])) for row in extra_summary_rows(rest))


def _npy(tmp_path: Path) -> str:
    path = tmp_path / "x.npy"
    np.save(path, _vectors(300))
    return f"npy:{path}"


def test_cli_filters(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    args = ["bench", "retrieval", "--data", _npy(tmp_path), "--n-holdout", "20", "--quiet"]
    result = runner.invoke(
        app,
        [
            *args,
            "--methods",
            "flat",
            "--filters",
            "--selectivities",
            "0.5,0.05",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "filtered:auto@5%" in result.output
    records = read_records(out)
    assert [r.method for r in records][:2] == ["Flat", "filtered:pre@50%"]
    assert len(records) == 1 + 2 * 5
    report = runner.invoke(app, ["report", str(out), "-o", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output

    only = tmp_path / "only.jsonl"
    result = runner.invoke(
        app,
        [*args, "--methods", "none", "--filters", "--selectivities", "0.1", "--json", str(only)],
    )
    assert result.exit_code == 0, result.output
    assert all(r.method.startswith("filtered:") for r in read_records(only))


def test_cli_default_unchanged_and_bad_input(tmp_path: Path) -> None:
    data = _npy(tmp_path)
    result = runner.invoke(app, ["bench", "retrieval", "--data", data, "--multivector"])
    assert result.exit_code == 2
    assert "--multivector needs token embeddings" in result.output
    result = runner.invoke(app, ["bench", "retrieval", "--data", data, "--methods", "none"])
    assert result.exit_code == 2 and "nothing to run" in result.output
    result = runner.invoke(
        app, ["bench", "retrieval", "--data", data, "--filters", "--selectivities", "2"]
    )
    assert result.exit_code == 2 and "--selectivities" in result.output


def test_cli_multivector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import embedlab.data.multivector as mv

    seen: list[str] = []

    def fake_load(spec: str, **kwargs: object) -> MultiVectorData:
        seen.append(spec)
        return _tokens(40)

    monkeypatch.setattr(mv, "load_multivector", fake_load)
    (tmp_path / "beir").mkdir()
    out = tmp_path / "mv.jsonl"
    result = runner.invoke(
        app,
        [
            "bench", "retrieval", "--data", f"beir:{tmp_path / 'beir'}", "--methods", "none",
            "--multivector", "--candidates", "10,50", "--quiet", "--json", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen == [f"beir:{tmp_path / 'beir'}"]
    records = read_records(out)
    methods = [r.method for r in records]
    assert methods[0] == BRUTE_FORCE_METHOD
    assert sum("@C=" in m for m in methods) == len(DEFAULT_GRID) * 2
    assert sum(m.startswith("heuristic") for m in methods) == len(DEFAULT_K_PRIMES)
    c50 = next(r for r in records if r.params.get("candidates") == 50)
    assert c50.metrics["recall@10"] == 1.0  # 50 >= 40 documents: exact re-ranking
    report = runner.invoke(app, ["report", str(out), "-o", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
