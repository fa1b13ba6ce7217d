"""``embedlab tables export`` / ``info`` on a run folder (config.json + model.safetensors)."""

from __future__ import annotations

import json
from pathlib import Path

import safetensors.torch
from typer.testing import CliRunner

from embedlab.cli import app
from embedlab.models import make_model
from embedlab.tables import Field, load_exported, make_table

runner = CliRunner()
FIELDS = [Field("user", 957), Field("item", 4082)]


def make_run(folder: Path) -> None:
    table = make_table("qr(op=add)", FIELDS, 16, compression=10, seed=1)
    model = make_model("fm", table)
    folder.mkdir()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    safetensors.torch.save_file(state, str(folder / "model.safetensors"))
    config = {
        "fields": [[f.name, f.cardinality] for f in FIELDS],
        "model": "fm",
        "method": "qr(op=add)",
        "compression": 10,
        "dim": 16,
        "seed": 1,
    }
    (folder / "config.json").write_text(json.dumps(config))


def test_export_and_info(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    out = tmp_path / "table.safetensors"
    result = runner.invoke(app, ["tables", "export", str(tmp_path / "run"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported qr" in result.output
    module = load_exported(out)
    assert module.config.hyper == {"op": "add"}
    result = runner.invoke(app, ["tables", "info", str(out)])
    assert result.exit_code == 0, result.output
    assert "method qr" in result.output and "user:957" in result.output


def test_export_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["tables", "export", str(tmp_path), "-o", str(tmp_path / "t")])
    assert result.exit_code == 2 and "run file does not exist" in result.output
    (tmp_path / "bad.safetensors").write_bytes(b"nope")
    result = runner.invoke(app, ["tables", "info", str(tmp_path / "bad.safetensors")])
    assert result.exit_code == 2 and "not a readable safetensors file" in result.output
