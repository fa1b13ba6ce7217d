"""Grids as Ray tasks give the sequential records (timings aside), stream, and resume."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from embedlab.bench import (
    BenchRecord,
    CTRBenchConfig,
    LocalEngine,
    RayEngine,
    run_ctr_bench,
    run_metric_bench,
)
from embedlab.bench.metric import load_labeled, metric_splits
from embedlab.cli import app
from embedlab.data import CTRSplits, load_ctr

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'embedlab[ray]')")

SRC = str(Path(__file__).parents[2] / "src")


@pytest.fixture(scope="module", autouse=True)
def cluster() -> Iterator[None]:
    """One local 2-CPU cluster for the module; workers import this checkout's embedlab."""
    path = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    yield
    ray.shutdown()


def _strip(records: list[BenchRecord]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        data = json.loads(r.to_json())
        data.pop("timing")
        out.append(data)
    return out


def _load(seed: int) -> CTRSplits:
    return load_ctr("synthetic", seed=seed, n_samples=4000, cardinalities=(300, 60, 12))


def test_ctr_grid_on_ray_equals_sequential_and_resumes() -> None:
    config = CTRBenchConfig(
        model="fm", methods=["hash", "ue"], compressions=[2.0, 4.0], dim=8, epochs=1,
        progress=False,
    )  # fmt: skip
    sequential = run_ctr_bench(_load, config, engine=LocalEngine(threads=1))  # Ray's 1 CPU
    streamed: list[BenchRecord] = []
    on_ray = run_ctr_bench(_load, config, engine=RayEngine(), on_record=streamed.append)
    assert _strip(on_ray) == _strip(sequential)  # AUC, logloss, bytes, deltas vs full
    assert sorted(r.method for r in streamed) == sorted(r.method for r in sequential)
    assert all(r.params["split_seed"] == 0 for r in on_ray)
    seen: list[BenchRecord] = []
    again = run_ctr_bench(_load, config, engine=RayEngine(), recorded=on_ray, on_record=seen.append)
    assert seen == [] and again == on_ray  # nothing submitted


def test_metric_grid_on_ray_equals_sequential() -> None:
    train, test = metric_splits(load_labeled("digits"))
    kw: dict[str, Any] = dict(
        losses=["supcon", "contrastive"], dim=8, epochs=1, batch_size=64, seeds=(0, 1),
        progress=False,
    )  # fmt: skip
    sequential = run_metric_bench(train, test, engine=LocalEngine(threads=1), **kw)
    on_ray = run_metric_bench(train, test, engine=RayEngine(cpus_per_run=1), **kw)
    assert _strip(on_ray) == _strip(sequential)


def test_cli_ray_appends_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    args = ["bench", "metric", "--losses", "supcon", "--dim", "8", "--epochs", "1",
            "--quiet", "--ray", "--json", str(out)]  # fmt: skip
    runner = CliRunner()
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert "--ray" in lines[0]["command"]
    assert sorted(d["method"] for d in lines[1:]) == ["raw_pixels", "supcon", "untrained"]
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "skipped 3 run(s) already recorded" in again.output
    assert len(out.read_text().splitlines()) == 5  # one more header, no records


def test_more_cpus_per_run_than_the_cluster_has_is_refused() -> None:
    with pytest.raises(ValueError, match="cpus_per_run must be <= the cluster's 2 CPUs, got 3"):
        config = CTRBenchConfig(model="fm", methods=["full"], epochs=1, progress=False)
        run_ctr_bench(_load, config, engine=RayEngine(cpus_per_run=3))
