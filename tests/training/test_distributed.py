"""Streamed / DDP CTR training: DDP equals one process, resume equals an uninterrupted run,
a dead rank stops the others, and the bad-input errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from _ddp_helpers import (
    METHODS,
    SETTINGS,
    FailingSource,
    build,
    ddp_rank,
    dying_rank,
    max_abs_diff,
    resume_rank,
    splits,
    train,
)
from safetensors.torch import load_file
from typer.testing import CliRunner

from embedlab.data import load_ctr
from embedlab.training import (
    CTRTrainer,
    DistributedCTRTrainer,
    MemorySource,
    load_run_checkpoint,
)
from embedlab.training.ctr_run import CTRRunConfig, load_trained_ctr, open_batch_source, run_ctr


def test_memory_source_rank_blocks_make_up_the_one_process_batch() -> None:
    source = MemorySource(splits())
    kw: dict[str, Any] = {"shuffle_buffer": 1, "seed": 5, "epoch": 1}
    one = list(source.iter_batches("train", 512, **kw))
    parts = [list(source.iter_batches("train", 256, rank=r, world_size=2, **kw)) for r in (0, 1)]
    assert source.steps_per_epoch("train", 256, 0, 2) == len(one) == 7  # 3201 rows
    for i, batch in enumerate(one):
        joined = torch.cat([parts[0][i].ids, parts[1][i].ids])
        assert torch.equal(joined, batch.ids)
    assert [len(b.labels) for b in (parts[0][-1], parts[1][-1])] == [65, 64]
    # a last batch with fewer rows than ranks: not a training step, but still evaluated
    assert source.steps_per_epoch("train", 800, 0, 4) == 1  # 3201 = 3200 + 1
    seen = sum(
        len(b.labels)
        for r in range(4)
        for b in source.iter_batches("train", 800, rank=r, world_size=4)
    )
    assert seen == 3201


def test_memory_source_bad_input() -> None:
    with pytest.raises(ValueError, match="rank must be <= 1 \\(world_size - 1\\), got 2"):
        next(MemorySource(splits()).iter_batches("train", 8, rank=2, world_size=2))
    with pytest.raises(ValueError, match="split must be one of test, train, valid; got 'dev'"):
        MemorySource(splits()).n_rows("dev")
    with pytest.raises(ValueError, match="splits must carry no behaviour history"):
        MemorySource(load_ctr("synthetic-seq", n_users=30, seed=0))


def test_streamed_one_process_equals_in_memory_trainer() -> None:
    """The streamed path with an in-memory source takes bit-identical steps (dropout too)."""
    data = splits()
    a, b = build("qr"), build("qr")
    settings = {k: v for k, v in SETTINGS.items() if k != "shuffle_buffer"}
    ra = CTRTrainer(**settings).fit(a, data.train, data.valid)
    rb = DistributedCTRTrainer(**settings).fit_stream(b, MemorySource(data))
    assert max_abs_diff(a.state_dict(), b.state_dict()) == 0.0
    assert ra.history[-1]["valid_auc"] == rb.history[-1]["valid_auc"]


def test_ddp_two_gloo_ranks_match_one_process(tmp_path: Path) -> None:
    """2 gloo ranks x 256 rows vs 1 process x 512 rows, 2 epochs, a short last batch.

    Tolerance 1e-6 absolute: only the float32 summation order differs (the all-reduce
    averages two half-batch gradients); measured max difference 3e-8 (full and qr).
    """
    mp.spawn(ddp_rank, args=(2, str(tmp_path)), nprocs=2, join=True)
    for method in METHODS:
        ddp = load_file(str(tmp_path / f"{method}.safetensors"))
        assert max_abs_diff(ddp, train(method)) < 1e-6, method


def test_a_dead_rank_stops_the_other_with_a_message(tmp_path: Path) -> None:
    start = time.perf_counter()
    ctx = mp.start_processes(
        dying_rank, args=(2, str(tmp_path)), nprocs=2, join=False, start_method="spawn"
    )
    for process in ctx.processes:
        process.join(60)
    codes = [p.exitcode for p in ctx.processes]
    for p in ctx.processes:
        if p.is_alive():
            p.kill()
    # both exit non-zero (1 from the re-raise; gloo may also abort a rank: a signal code)
    assert all(code not in (0, None) for code in codes), codes
    assert time.perf_counter() - start < 60
    message = (tmp_path / "rank0.txt").read_text()
    assert message.startswith("DistributedRunError: rank 0 of 2, phase 'train': another rank")
    assert "fails on purpose" in (tmp_path / "rank1.txt").read_text()


def test_batch_not_divisible_by_world_size() -> None:
    trainer = DistributedCTRTrainer(batch_size=1000, progress=False)
    with pytest.raises(ValueError, match=r"world size 3, got 1000; use e\.g\. 999"):
        trainer.local_batch_size(3)


def _config(**kw: Any) -> CTRRunConfig:
    base: dict[str, Any] = {
        "data": "synthetic",
        "model": "deepfm(hidden=32-16, dropout=0.3)",
        "method": "qr",
        "compression": 4.0,
        "dim": 8,
        "epochs": 3,
        "batch_size": 512,
        "patience": None,
    }
    return CTRRunConfig(**{**base, **kw})


def test_resume_gives_the_uninterrupted_parameters(tmp_path: Path) -> None:
    """Killed in epoch 3 (dropout on, so the RNG state must be restored too)."""
    data = splits()
    full = run_ctr(_config(), tmp_path / "a", progress=False, source=MemorySource(data))
    dying = FailingSource(data, fail_rank=0, fail_batch=3)
    original = dying.iter_batches

    def fail_in_epoch_3(split: str, batch_size: int, **kw: Any) -> Any:
        if kw.get("epoch") == 2:
            return original(split, batch_size, **kw)
        return MemorySource.iter_batches(dying, split, batch_size, **kw)

    dying.iter_batches = fail_in_epoch_3  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="fails on purpose"):
        run_ctr(_config(), tmp_path / "b", progress=False, source=dying)
    assert load_run_checkpoint(tmp_path / "b" / "checkpoint").epoch == 2
    resumed = run_ctr(
        _config(), tmp_path / "b", resume=True, progress=False, source=MemorySource(data)
    )
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert max_abs_diff(a, b) == 0.0

    def curve(metrics: dict[str, Any]) -> list[tuple[float, float]]:
        return [(h["train_loss"], h["valid_auc"]) for h in metrics["history"]]

    assert curve(resumed) == curve(full)
    assert resumed["test_auc"] == full["test_auc"]
    # config.json rebuilds the model
    config, model = load_trained_ctr(tmp_path / "a")
    assert config == _config() and max_abs_diff(model.state_dict(), a) == 0.0


def test_resume_bad_checkpoints(tmp_path: Path) -> None:
    source = MemorySource(splits())
    with pytest.raises(FileNotFoundError, match=r"no checkpoint in .*meta\.json is missing"):
        run_ctr(_config(epochs=1), tmp_path, resume=True, progress=False, source=source)
    run_ctr(_config(epochs=1), tmp_path, progress=False, source=source)
    with pytest.raises(ValueError, match=r"written with lr=0\.001, this run has lr=0\.01;"):
        run_ctr(_config(epochs=1, lr=0.01), tmp_path, resume=True, progress=False, source=source)
    state = next((tmp_path / "checkpoint").glob("state-*.safetensors"))
    state.write_bytes(state.read_bytes()[:-10])
    with pytest.raises(ValueError, match="is corrupt: its SHA-256 differs"):
        run_ctr(_config(epochs=1), tmp_path, resume=True, progress=False, source=source)
    (tmp_path / "checkpoint" / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not readable JSON"):
        run_ctr(_config(epochs=1), tmp_path, resume=True, progress=False, source=source)


def test_shards_spec_trains_from_prepared_shards(tmp_path: Path) -> None:
    from embedlab.data import CTRShards, prepare_ctr

    with pytest.raises(ValueError, match="shards folder /nowhere does not exist"):
        open_batch_source("shards:/nowhere")
    shards = tmp_path / "shards"
    prepare_ctr(f"libfm:{_libfm(tmp_path / 'log.libfm', n=3000)}", shards, shard_rows=500)
    source = open_batch_source(f"shards:{shards}")
    assert isinstance(source, CTRShards)
    config = _config(data=f"shards:{shards}", model="fm", method="full", compression=1.0)
    metrics = run_ctr(config, tmp_path / "run", progress=False)
    assert metrics["test_auc"] > 0.6  # planted signal in _libfm; measured 0.634
    assert (tmp_path / "run" / "model.safetensors").exists()


def _libfm(path: Path, n: int = 800) -> Path:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 20, n), rng.integers(20, 50, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(a % 3 - 1.0)))).astype(int)
    path.write_text("".join(f"{t} {i}:1 {j}:1\n" for t, i, j in zip(y, a, b, strict=True)))
    return path


def test_cli_in_one_process(tmp_path: Path) -> None:
    from embedlab.train import app

    data = f"libfm:{_libfm(tmp_path / 'tiny.libfm')}"
    args = ["ctr", "--data", data, "--method", "full", "--compression", "1", "--dim", "4"]
    args += ["--epochs", "2", "--batch-size", "128", "--no-progress", "-o", str(tmp_path / "r")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output.strip().splitlines()[-1])
    assert metrics["world_size"] == 1 and metrics["epochs_run"] == 2
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["data"] == data and config["fields"][0]["cardinality"] > 0
    assert (tmp_path / "r" / "model.safetensors").is_file()
    bad = CliRunner().invoke(app, ["ctr", "--data", data, "-o", str(tmp_path / "r"), "--resume"])
    assert bad.exit_code == 2 and "written with batch_size=128, this run has batch_size=2048" in (
        bad.output
    )


def test_python_dash_m_runs(tmp_path: Path) -> None:
    data = f"libfm:{_libfm(tmp_path / 'tiny.libfm', 300)}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    cmd = [sys.executable, "-m", "embedlab.train", "ctr", "--data", data, "--method", "hash"]
    cmd += ["--compression", "2", "--dim", "4", "--epochs", "1", "--no-progress"]
    done = subprocess.run(
        [*cmd, "-o", str(tmp_path / "r")], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["world_size"] == 1


def test_time_budget_stops_the_run(tmp_path: Path) -> None:
    metrics = run_ctr(_config(epochs=3, max_train_seconds=0.01), tmp_path / "run", progress=False)
    assert metrics["stop_reason"] == "time_limit" and metrics["epochs_run"] == 1


def test_two_gloo_ranks_resume_inside_a_later_phase(tmp_path: Path) -> None:
    """pep killed on both ranks in epoch 1 of its retrain phase, resumed on 2 ranks:
    the parameters equal the uninterrupted 2-rank run's exactly (same ranks, same
    all-reduce order)."""
    mp.spawn(resume_rank, args=(2, str(tmp_path)), nprocs=2, join=True)
    assert (tmp_path / "killed.txt").read_text() == "1 1"  # resumed from phase 1, epoch 1
    full = load_file(str(tmp_path / "full.safetensors"))
    assert max_abs_diff(load_file(str(tmp_path / "resumed.safetensors")), full) == 0.0
