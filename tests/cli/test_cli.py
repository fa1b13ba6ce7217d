from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedlab import __version__
from embedlab.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_bench_ctr_synthetic_and_report(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    result = runner.invoke(
        app,
        [
            "bench",
            "ctr",
            "--data",
            "synthetic",
            "--model",
            "fm",
            "--methods",
            "full,hash,qr",
            "--compression",
            "10",
            "--epochs",
            "1",
            "--json",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    header, *lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert header["kind"] == "header" and header["command"].startswith("embedlab bench ctr")
    assert [(r["method"], r["compression"]) for r in lines] == [
        ("full", 1.0),
        ("hash", 10.0),
        ("qr", 10.0),
    ]
    for r in lines:
        assert r["suite"] == "ctr" and r["dataset"] == "synthetic" and r["model"] == "fm"
        assert r["memory_bytes"] <= r["params"]["budget_bytes"]
        assert 0.5 < r["metrics"]["auc"] <= 1.0
    assert "hash" in result.stdout and "auc" in result.stdout

    report_dir = tmp_path / "rep"
    result = runner.invoke(app, ["report", str(out), "-o", str(report_dir)])
    assert result.exit_code == 0, result.output
    html = (report_dir / "index.html").read_text()
    assert "qr" in html and "<svg" in html

    # several files and glob patterns merge into one report
    (tmp_path / "more.jsonl").write_text(out.read_text().replace('"qr"', '"qr(op=add)"'))
    merged = tmp_path / "merged"
    result = runner.invoke(app, ["report", str(out), str(tmp_path / "m*.jsonl"), "-o", str(merged)])
    assert result.exit_code == 0, result.output
    assert "qr(op=add)" in (merged / "index.html").read_text()
    result = runner.invoke(app, ["report", str(tmp_path / "zz*.jsonl"), "-o", str(merged)])
    assert result.exit_code == 2 and "no records file matches" in result.output


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--methods", "full,nope"], "unknown table 'nope'; valid tables: "),
        (["--model", "nomodel"], "unknown model 'nomodel'; valid models: "),
        (["--compression", "0.5"], "compression must be >= 1, got 0.5"),
        (["--compression", "ten"], "--compression must be comma-separated numbers"),
        (["--dim", "0"], "dim must be >= 1, got 0"),
        (["--data", "nosuch:x"], "nosuch"),
        (["--data", "frappe:/definitely/not/here"], "does not exist"),
    ],
)
def test_bench_ctr_bad_input(args: list[str], match: str) -> None:
    result = runner.invoke(app, ["bench", "ctr", "--epochs", "1", "--quiet", *args])
    assert result.exit_code == 2
    assert match in " ".join(result.output.split())


def test_report_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    result = runner.invoke(app, ["report", str(bad), "-o", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "bad.jsonl line 1" in result.output
    result = runner.invoke(app, ["report", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
