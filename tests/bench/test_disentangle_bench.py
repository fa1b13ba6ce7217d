"""The disentanglement suite and its CLI on a few hundred generated images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from embedlab.bench.disentangle import DISENTANGLE_METRICS, run_disentangle_bench
from embedlab.cli import app
from embedlab.data.shapes import make_shapes


def test_tiny_bench_records() -> None:
    torch.set_num_threads(1)
    data = make_shapes(200, size=16, seed=0)
    seen = []
    records = run_disentangle_bench(
        data,
        methods=["ae", "beta_vae", "lq_ae(n_values=4)"],
        seeds=[0],
        epochs=1,
        n_latents=4,
        eval_n=150,
        on_record=seen.append,
    )
    assert seen == records
    assert [r.method for r in records] == ["ae", "beta_vae", "lq_ae(n_values=4)"]
    for r in records:
        assert r.suite == "disentangle" and 0.0 < r.metrics["mse"] < 1.0
        assert r.params["eval_n"] == 150 and r.params["n_latents"] == 4
        if r.status == "collapsed":  # a quantised code after 4 steps may not have moved yet
            assert r.method.startswith("lq_ae") and r.metrics["active_latents"] == 0
            continue
        assert r.status == "ok" and list(r.metrics)[:4] == list(DISENTANGLE_METRICS)
        for key in ("infom", "infoe", "infoc"):
            assert -1e-9 <= r.metrics[key] <= 1.0 + 1e-9
    assert records[0].status == "ok" and records[1].status == "ok"
    assert records[2].params["weight_decay"] == 0.1 and records[0].params["weight_decay"] == 0.0


def test_collapsed_code_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    import embedlab.disentangle as D

    monkeypatch.setattr(D, "encode", lambda model, images: np.zeros((len(images), 3)))
    data = make_shapes(40, size=16, seed=0)
    (rec,) = run_disentangle_bench(data, methods=["lq_ae"], epochs=1, n_latents=3)
    assert rec.status == "collapsed" and "every latent is constant" in (rec.error or "")
    assert set(rec.metrics) == {"mse", "active_latents"}


def test_bench_errors() -> None:
    data = make_shapes(20, size=16)
    with pytest.raises(ValueError, match="unknown autoencoder 'nope'"):
        run_disentangle_bench(data, methods=["nope"])
    with pytest.raises(ValueError, match="methods must not be empty"):
        run_disentangle_bench(data, methods=[])


def test_cli(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "bench",
            "disentangle",
            "--data",
            "shapes(n=60,size=16)",
            "--methods",
            "lq_ae",
            "--seed",
            "0,1",
            "--epochs",
            "1",
            "--eval-n",
            "50",
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "InfoM" in result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    recs = [x for x in lines if x.get("suite") == "disentangle"]
    assert [r["seed"] for r in recs] == [0, 1] and "infoe" in recs[0]["metrics"]
    bad = runner.invoke(app, ["bench", "disentangle", "--methods", "lq_ae(n_values=1)"])
    assert bad.exit_code != 0 and "n_values must be >= 2" in bad.output
    bad = runner.invoke(app, ["bench", "disentangle", "--data", "mnist"])
    assert bad.exit_code != 0 and "data must be shapes" in bad.output
