"""The clustering suite and ``embedlab bench cluster`` on synthetic blobs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedlab.bench import read_records, run_cluster_bench
from embedlab.bench.cluster import CLUSTER_METRICS, load_cluster_data, make_blobs
from embedlab.cli import app


def test_records_per_method_and_seed() -> None:
    data = make_blobs(n_samples=120, n_clusters=3, dim=5, seed=1)
    recs = run_cluster_bench(data, methods=["kmeans", "spectral(n_neighbors=5)"], seeds=[0, 1])
    assert [(r.method, r.seed) for r in recs] == [
        ("kmeans", 0), ("spectral(n_neighbors=5)", 0), ("kmeans", 1), ("spectral(n_neighbors=5)", 1)
    ]  # fmt: skip
    for r in recs:
        assert r.suite == "cluster" and r.dataset == "blobs" and r.status == "ok"
        assert list(r.metrics) == list(CLUSTER_METRICS)
        assert r.metrics["nmi"] > 0.99 and r.timing["fit_s"] >= 0
        assert r.params["n"] == 120 and r.params["n_clusters"] == 3


def test_bad_method_and_data() -> None:
    data = make_blobs(n_samples=30, n_clusters=3, dim=2)
    with pytest.raises(
        ValueError, match=r"unknown clusterer 'kmean'; valid clusterers: acpic, depict"
    ):
        run_cluster_bench(data, methods=["kmeans", "kmean"])
    rec = run_cluster_bench(data, methods=["depict(batch_size=100)"])[0]
    assert rec.status == "failed" and "batch_size must be <= 30" in str(rec.error)
    with pytest.raises(
        ValueError, match=r"data kind must be one of digits, mnist, shapes; got 'cifar'"
    ):
        load_cluster_data("cifar:/x")
    assert len(load_cluster_data("blobs")) == 600


def test_cli_writes_records(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    result = CliRunner().invoke(
        app,
        ["bench", "cluster", "--data", "blobs", "--methods", "kmeans", "--seed", "0,1",
         "--json", str(out), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "NMI" in result.output
    recs = read_records(out)
    assert [r.seed for r in recs] == [0, 1] and recs[0].metrics["nmi"] > 0.99
    header, first = (json.loads(x) for x in out.read_text().splitlines()[:2])
    assert header["kind"] == "header" and first["suite"] == "cluster"


def test_cli_rejects_a_typo_before_loading() -> None:
    result = CliRunner().invoke(
        app, ["bench", "cluster", "--data", "mnist:/nonexistent", "--methods", "kmeans,dpict"]
    )
    assert result.exit_code == 2
    assert "unknown clusterer 'dpict'" in result.output
