"""``--json`` appends with a header line, resumes, ``--rerun``, ``--json -``, ``--ray`` errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedlab.bench import read_records
from embedlab.cli import app

runner = CliRunner()
CTR = ["bench", "ctr", "--model", "fm", "--methods", "full,hash", "--compression", "10",
       "--epochs", "1", "--dim", "4", "--quiet"]  # fmt: skip


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_json_appends_resumes_and_reruns(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    first = runner.invoke(app, [*CTR, "--json", str(out)])
    assert first.exit_code == 0, first.output
    lines = _lines(out)
    assert [d.get("kind", d.get("method")) for d in lines] == ["header", "full", "hash"]
    assert lines[0]["command"] == (  # the options given, in the command's order
        "embedlab bench ctr --model fm --methods full,hash --compression 10 --dim 4 "
        f"--epochs 1 --json {out} --quiet"
    )
    again = runner.invoke(app, [*CTR, "--json", str(out)])
    assert again.exit_code == 0, again.output
    assert "skipped 2 run(s) already recorded" in again.output
    assert "hash" in again.output  # the summary still shows the whole grid
    assert [d.get("kind", d.get("method")) for d in _lines(out)][3:] == ["header"]
    more = runner.invoke(app, [*CTR, "--compression", "10,20", "--json", str(out)])
    assert more.exit_code == 0, more.output
    assert [(r.method, r.compression) for r in read_records(out)] == [
        ("full", 1.0), ("hash", 10.0), ("hash", 20.0),
    ]  # fmt: skip
    rerun = runner.invoke(app, [*CTR, "--json", str(out), "--rerun"])
    assert rerun.exit_code == 0, rerun.output
    assert [r.method for r in read_records(out)] == ["full", "hash", "hash", "full", "hash"]
    assert sum(d.get("kind") == "header" for d in _lines(out)) == 4


def test_json_dash_writes_records_to_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [*CTR, "--methods", "full", "--json", "-"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "-").exists()
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert [d.get("kind", d.get("method")) for d in lines] == ["header", "full"]
    assert "records appended" not in result.output


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--address", "auto"], "--address needs --ray"),
        (["--cpus-per-run", "0"], "--cpus-per-run must be >= 1, got 0"),
        (["--ray", "--cpus-per-run", "0"], "--cpus-per-run must be >= 1, got 0"),
    ],
)
def test_ray_option_errors(args: list[str], match: str) -> None:
    result = runner.invoke(app, [*CTR, *args])
    assert result.exit_code == 2
    assert match in result.output


@pytest.mark.parametrize("suite", [CTR, ["bench", "metric", "--quiet"], ["bench", "retrieval"]])
def test_ray_without_ray_says_how_to_install(
    suite: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    result = runner.invoke(app, [*suite, "--ray"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --ray needs Ray: pip install 'embedlab[ray]'"
