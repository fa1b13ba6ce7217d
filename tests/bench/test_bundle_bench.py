"""The bundle-completion suite and its CLI on planted bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedlab.bench.bundle import run_bundle_bench
from embedlab.cli import app
from embedlab.data.bundles import make_planted_bundles


def test_records() -> None:
    data = make_planted_bundles(n_items=24, n_groups=4, n_bundles=60, seed=0)
    recs = run_bundle_bench(
        lambda s: make_planted_bundles(n_items=24, n_groups=4, n_bundles=60, seed=s),
        methods=["mean", "clhe(dim=8, hidden=8)"],
        seeds=[0, 1],
        epochs=1,
        k=5,
    )
    assert [(r.method, r.seed) for r in recs] == [
        ("mean", 0),
        ("clhe(dim=8, hidden=8)", 0),
        ("mean", 1),
        ("clhe(dim=8, hidden=8)", 1),
    ]
    for r in recs:
        assert r.suite == "bundle" and r.status == "ok", r.error
        assert 0.0 <= r.metrics["recall@5"] <= 1.0 and 0.0 <= r.metrics["ndcg@5"] <= 1.0
        assert r.params["n_items"] == 24 and r.timing["train_s"] > 0
    with pytest.raises(ValueError, match="methods must be among"):
        run_bundle_bench(data, methods=["nope"])
    with pytest.raises(ValueError, match="methods must not be empty"):
        run_bundle_bench(data, methods=[])
    bad = run_bundle_bench(data, methods=["clhe(dim=0)"], epochs=1)
    assert bad[0].status == "failed" and "dim must be >= 1" in str(bad[0].error)


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    runner = CliRunner()
    args = ["bench", "bundle", "--data", "synthetic-bundles(n_items=24,n_groups=4,n_bundles=60)"]
    result = runner.invoke(
        app,
        [*args, "--methods", "mean,clhe_nocl(dim=8)", "--seed", "0,1", "--epochs", "1",
         "-k", "5", "--threads", "1", "-q", "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Recall@5" in result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    recs = [x for x in lines if x.get("suite") == "bundle"]
    assert [r["seed"] for r in recs] == [0, 0, 1, 1] and "ndcg@5" in recs[0]["metrics"]
    bad = runner.invoke(app, ["bench", "bundle", "--methods", "clhe2"])
    assert bad.exit_code != 0 and "--methods must be among" in bad.output
    bad = runner.invoke(app, ["bench", "bundle", "--data", "movielens-bundles"])
    assert bad.exit_code != 0 and "needs a path" in bad.output
    bad = runner.invoke(app, ["bench", "bundle", "--epochs", "0"])
    assert bad.exit_code != 0 and "--epochs must be >= 1" in bad.output
