"""The metric suite and its CLI command on the bundled digits (tiny settings)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from embedlab.bench.metric import METRIC_KEYS, load_labeled, metric_splits, run_metric_bench
from embedlab.cli.metric import bench_metric


@pytest.fixture(scope="module")
def splits():  # type: ignore[no-untyped-def]
    return metric_splits(load_labeled("digits"))


def test_records_for_losses_and_baselines(splits) -> None:  # type: ignore[no-untyped-def]
    train, test = splits
    recs = run_metric_bench(
        train, test, losses=["supcon"], dim=8, epochs=1, batch_size=64, progress=False
    )
    assert [r.method for r in recs] == ["untrained", "raw_pixels", "supcon"]
    for r in recs:
        assert r.suite == "metric" and r.dataset == "digits" and r.model == "mlp"
        assert r.status == "ok" and list(r.metrics) == list(METRIC_KEYS)
        assert all(0.0 <= v <= 1.0 for v in r.metrics.values())
    assert recs[0].memory_bytes == 32 and recs[1].memory_bytes == 64 * 4
    assert recs[2].timing["train_s"] > 0 and recs[2].timing["samples_per_s"] > 0


def test_unknown_loss_fails_before_training(splits) -> None:  # type: ignore[no-untyped-def]
    train, test = splits
    with pytest.raises(ValueError, match=r"unknown loss 'nope'; valid losses: .*supcon"):
        run_metric_bench(train, test, losses=["supcon", "nope"], progress=False)


def test_data_specs() -> None:
    assert len(load_labeled("digits")) == 1797
    shapes = load_labeled("shapes(n=30, size=16)")
    assert shapes.x.shape == (30, 3, 16, 16) and set(shapes.y.tolist()) <= {0, 1, 2}
    with pytest.raises(
        ValueError, match="data kind must be one of digits, mnist, shapes; got 'cifar'"
    ):
        load_labeled("cifar:/x")
    with pytest.raises(ValueError, match=r"needs a folder: mnist:PATH"):
        load_labeled("mnist")
    with pytest.raises(FileNotFoundError, match="data path does not exist"):
        load_labeled("mnist:/nonexistent/mnist")
    with pytest.raises(ValueError, match=r"must not overlap, got \[4\]"):
        metric_splits(load_labeled("digits"), (0, 4), (4, 5))


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("metric")(bench_metric)

    @app.callback()
    def root() -> None:
        """test group"""

    return app


def test_cli_writes_records_and_reports_errors(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    runner = CliRunner()
    args = ["metric", "--losses", "supcon", "--dim", "8", "--epochs", "1", "--quiet"]
    result = runner.invoke(_app(), [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "P@1" in result.output and "supcon" in result.output
    header, *lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert header["kind"] == "header" and "metric --losses supcon" in header["command"]
    assert [d["method"] for d in lines] == ["untrained", "raw_pixels", "supcon"]
    bad = runner.invoke(_app(), ["metric", "--losses", "nope", "--quiet"])
    assert bad.exit_code == 2 and "unknown loss 'nope'" in bad.output
    bad = runner.invoke(_app(), ["metric", "--data", "mnist:/nonexistent", "--quiet"])
    assert bad.exit_code == 2 and "does not exist" in bad.output
