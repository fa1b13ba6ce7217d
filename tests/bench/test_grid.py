"""The shared grid runner: resume (skip recorded runs), per-seed splits, held records."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_retrieval_bench import local_factory, make_data  # a sibling test module

from embedlab.bench import (
    BenchRecord,
    CTRBenchConfig,
    Grid,
    GridRun,
    RayEngine,
    run_ctr_bench,
    run_grid,
    run_metric_bench,
    undocumented_keys,
)
from embedlab.bench.ctr import _VersusReference
from embedlab.bench.metric import load_labeled, metric_splits
from embedlab.data import CTRSplits, load_ctr


def _load(seed: int) -> CTRSplits:
    return load_ctr("synthetic", seed=seed, n_samples=3000, cardinalities=(200, 50, 10))


def _config(**kw: object) -> CTRBenchConfig:
    base: dict[str, object] = dict(
        model="fm", methods=["hash"], compressions=[2.0], dim=8, epochs=1, progress=False
    )
    return CTRBenchConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_resume_skips_recorded_runs_and_returns_them() -> None:
    first = run_ctr_bench(_load, _config())
    assert [(r.method, r.compression) for r in first] == [("full", 1.0), ("hash", 2.0)]
    assert len({r.config_hash for r in first}) == 1 and first[0].config_hash
    seen: list[BenchRecord] = []
    more = _config(compressions=[2.0, 4.0])
    again = run_ctr_bench(_load, more, recorded=first, on_record=seen.append)
    assert [(r.method, r.compression) for r in seen] == [("hash", 4.0)]  # only the new run
    assert again[:2] == first and again[2] is seen[0]
    # the ratio against full uses the recorded reference
    assert seen[0].metrics["auc_delta_vs_full"] == pytest.approx(
        seen[0].metrics["auc"] - first[0].metrics["auc"]
    )
    other = run_ctr_bench(_load, _config(lr=2e-3), recorded=first, on_record=seen.append)
    assert len(seen) == 3 and other[0].config_hash != first[0].config_hash  # settings changed


def test_each_seed_gets_its_own_split() -> None:
    records = run_ctr_bench(_load, _config(methods=["full"], seeds=[0, 1]))
    assert [r.params["split_seed"] for r in records] == [0, 1]
    assert records[0].metrics["auc"] != records[1].metrics["auc"]
    fixed = run_ctr_bench(_load(0), _config(methods=["full"], seeds=[0, 1]))
    assert [r.params["split_seed"] for r in fixed] == [None, None]  # one split, said so
    assert fixed[0].config_hash != records[0].config_hash


def test_reference_holds_records_until_known() -> None:
    collect = _VersusReference()
    ref = BenchRecord("ctr", "d", "full", compression=1.0, metrics={"auc": 0.8},
                      timing={"samples_per_s": 10.0})  # fmt: skip
    run = BenchRecord("ctr", "d", "qr", compression=10.0, metrics={"auc": 0.7},
                      timing={"samples_per_s": 20.0})  # fmt: skip
    assert collect.add(run) == []  # measured before its reference (Ray)
    assert collect.add(ref) == [ref, run]
    assert run.metrics["auc_delta_vs_full"] == pytest.approx(-0.1)
    assert run.timing["samples_per_s_vs_full"] == 2.0
    orphan = BenchRecord("ctr", "d", "qr", seed=3)
    assert collect.add(orphan) == [] and collect.rest() == [orphan]


def test_grid_stops_on_error_keeping_what_finished() -> None:
    def task(data: object, run: GridRun) -> BenchRecord:
        if run.method == "bad":
            raise RuntimeError("broke its budget")
        return BenchRecord("s", "d", run.method, seed=run.seed)

    grid = Grid("s", "d", "h", [GridRun("a", 0), GridRun("bad", 0), GridRun("c", 0)], task,
                lambda seed: None)  # fmt: skip
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="broke its budget"):
        run_grid(grid, on_record=lambda r: seen.append(r.method))
    assert seen == ["a"]


def test_metric_and_retrieval_resume(tmp_path: Path) -> None:
    train, test = metric_splits(load_labeled("digits"))
    kw: dict[str, object] = dict(losses=["supcon"], dim=8, epochs=1, batch_size=64, progress=False)
    first = run_metric_bench(train, test, **kw)  # type: ignore[arg-type]
    seen: list[BenchRecord] = []
    again = run_metric_bench(train, test, recorded=first, on_record=seen.append, **kw)  # type: ignore[arg-type]
    assert seen == [] and again == first

    from embedlab.bench import RetrievalBenchConfig, run_retrieval_bench

    config = RetrievalBenchConfig(methods=["flat", "Trunc4"], progress=False, latency_queries=3)
    data = make_data()
    recs = run_retrieval_bench(data, config, factory=local_factory)
    assert recs[1].compression == 4.0  # measured, not part of the key
    assert run_retrieval_bench(data, config, factory=local_factory, recorded=recs) == recs
    for rec in [*first, *recs]:
        assert undocumented_keys(rec) == []


def test_every_ctr_key_is_documented() -> None:
    records = run_ctr_bench(_load, _config(methods=["hash", "qr"], compressions=[2.0, 1e6]))
    assert {r.status for r in records} == {"ok", "infeasible"}
    for rec in records:
        assert undocumented_keys(rec) == []


def test_ray_engine_checks_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="cpus_per_run must be >= 1, got 0"):
        RayEngine(cpus_per_run=0)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ImportError, match=r"RayEngine needs Ray: pip install 'embedlab\[ray\]'"):
        RayEngine()
