"""bench metric on a view-pair source (mnist-rot): sie / simclr / vicreg records and errors."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from embedlab.bench.metric import METRIC_KEYS
from embedlab.bench.metric_views import (
    check_methods_for_source,
    is_view_source,
    relative_angle_r2,
    run_view_bench,
)
from embedlab.data.labeled import LabeledData
from embedlab.data.rotated_views import rotated_views
from embedlab.training.simclr import fit_simclr


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _images(n: int, classes: tuple[int, ...], seed: int, side: int = 12) -> LabeledData:
    """Bars at a class-dependent row: rotating them moves them, so the angle is visible."""
    rng = np.random.default_rng(seed)
    y = np.array([classes[i % len(classes)] for i in range(n)], dtype=np.int64)
    x = 0.1 * rng.random((n, 1, side, side)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 0, 1 + (c % 5), 1 : side - 1] = 1.0
    return LabeledData(x, y, name="toy-rot")


def test_view_bench_records() -> None:
    train, test = _images(24, (0, 1, 2), 0, side=8), _images(18, (5, 6, 7), 1, side=8)
    seen: list[object] = []
    recs = run_view_bench(
        train, test, methods=["sie(dim_eq=2)", "vicreg"], dim=8,
        epochs=1, batch_size=16, seeds=(0,), progress=False, on_record=seen.append,
    )  # fmt: skip
    assert [r.method for r in recs] == ["sie(dim_eq=2)", "vicreg"]
    assert seen == recs
    for r in recs:
        assert r.status == "ok", r.error
        assert r.suite == "metric" and r.params["input_kind"] == "view_pairs"
        assert list(r.metrics)[: len(METRIC_KEYS)] == list(METRIC_KEYS)  # P@1 first
        assert all(np.isfinite(v) for v in r.metrics.values())
        assert r.metrics["angle_r2"] <= 1.0
    sie, vicreg = recs
    assert sie.params["dim_inv"] == 6 and sie.params["dim_eq"] == 2
    assert sie.params["angle_r2_from"] == "equivariant part" and "angle_r2_inv" in sie.metrics
    assert vicreg.params["dim_eq"] == 0 and "angle_r2_inv" not in vicreg.metrics
    assert vicreg.params["angle_r2_from"] == "whole embedding"


def test_relative_angle_probe() -> None:
    rng = np.random.default_rng(0)

    def pairs(n: int, noise: bool) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        a1, a2 = rng.uniform(-np.pi / 2, np.pi / 2, (2, n))
        if noise:
            return (rng.normal(size=(n, 2)), rng.normal(size=(n, 2))), a2 - a1
        return (np.c_[np.cos(a1), np.sin(a1)], np.c_[np.cos(a2), np.sin(a2)]), a2 - a1

    (tr, a_tr), (te, a_te) = pairs(200, False), pairs(100, False)
    assert relative_angle_r2(tr, a_tr, te, a_te) > 0.8  # measured 0.98
    (tr, a_tr), (te, a_te) = pairs(200, True), pairs(100, True)
    assert relative_angle_r2(tr, a_tr, te, a_te) < 0.1


def test_source_and_method_checks() -> None:
    assert is_view_source("mnist-rot:/x") and not is_view_source("mnist:/x")
    with pytest.raises(ValueError, match=r"loss 'triplet' cannot train on a view-pair source"):
        check_methods_for_source(["sie", "triplet(margin=0.1)"], view_pairs=True)
    with pytest.raises(ValueError, match=r"method 'simclr' trains on view pairs"):
        check_methods_for_source(["triplet", "simclr"], view_pairs=False)
    check_methods_for_source(["triplet", "supcon"], view_pairs=False)
    train, test = _images(8, (0, 1), 0), _images(8, (5, 6), 1)
    with pytest.raises(ValueError, match=r"unknown hyper-parameter 'margin' for method 'sie'"):
        run_view_bench(train, test, methods=["sie(margin=1)"], dim=8)
    with pytest.raises(ValueError, match=r"sie dim_eq must be < dim=8, got 8"):
        run_view_bench(train, test, methods=["sie(dim_eq=8)"], dim=8)


def test_simclr_is_deterministic() -> None:
    data = _images(24, (0, 1, 2), 0)
    views = rotated_views(data.x, data.y, max_angle=45, seed=0)
    a = fit_simclr(views, dim=4, epochs=2, batch_size=8, seed=3)
    b = fit_simclr(views, dim=4, epochs=2, batch_size=8, seed=3)
    assert len(a.history) == 2 and a.history == b.history
    assert a.dim_inv == 4 and a.dim_eq == 0 and a.predictor is None
    with pytest.raises(TypeError, match=r"views must be a RotatedViews"):
        fit_simclr(data, dim=4)  # type: ignore[arg-type]


def _write_idx(path: Path, array: np.ndarray) -> None:
    head = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    path.write_bytes(head + b"".join(struct.pack(">I", n) for n in array.shape) + array.tobytes())


def test_cli_mnist_rot(tmp_path: Path) -> None:
    from embedlab.cli import app

    rng = np.random.default_rng(0)
    labels = np.arange(40, dtype=np.uint8) % 10
    images = rng.integers(0, 60, size=(40, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
        images[i, 4 + 2 * c, 4:24] = 255
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    out = tmp_path / "runs.jsonl"
    base = ["bench", "metric", "--data", f"mnist-rot:{tmp_path}", "--dim", "8"]
    runner = CliRunner()
    result = runner.invoke(
        app, [*base, "--losses", "simclr(temperature=0.2)", "--epochs", "1", "--batch-size", "8",
              "--json", str(out), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    recs = [r for r in rows if r.get("kind") != "header"]
    assert [r["method"] for r in recs] == ["simclr(temperature=0.2)"]
    assert recs[0]["dataset"] == "mnist-rot" and "angle_r2" in recs[0]["metrics"]
    assert recs[0]["params"]["temperature"] == 0.2 and recs[0]["params"]["dim_eq"] == 0
    bad = runner.invoke(app, [*base, "--losses", "triplet"])
    assert bad.exit_code != 0 and "cannot train on a view-pair source" in bad.output
    bad = runner.invoke(app, ["bench", "metric", "--data", "digits", "--losses", "sie"])
    assert bad.exit_code != 0 and "trains on view pairs" in bad.output
