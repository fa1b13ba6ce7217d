"""Every CLI error is one ``error: ...`` line on stderr and exit code 2, never a traceback.

Options are checked before any data is loaded or model trained, so each bad-option case
below returns at once; ``--debug`` / ``EMBEDLAB_DEBUG=1`` add the traceback.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner, Result

from embedlab.cli import _common, app, main
from embedlab.cli._common import describe_error, fail

runner = CliRunner()


def _error_line(result: Result, code: int = 2) -> str:
    """The single stderr line of a failed run (asserts the one-line contract)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """cwd = tmp_path with v.npy (60 x 8), e.tsv, a file ``afile`` and an empty ``adir``."""
    monkeypatch.chdir(tmp_path)
    np.save("v.npy", np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32))
    Path("e.tsv").write_text("0 1\n1 2\n2 0\n")
    Path("afile").write_text("keep me\n")
    Path("adir").mkdir()
    return tmp_path


# (arguments, text the error line must contain: the option and the value)
BAD_OPTIONS: list[tuple[str, str]] = [
    # bench ctr: the known defect (--lr nan was a Rich traceback) and its siblings
    ("bench ctr --lr nan", "--lr must be finite, got nan"),
    ("bench ctr --lr inf", "--lr must be finite, got inf"),
    ("bench ctr --lr -1", "--lr must be > 0, got -1.0"),
    ("bench ctr --lr 0", "--lr must be > 0, got 0.0"),
    ("bench ctr --dim 0", "--dim must be >= 1, got 0"),
    ("bench ctr --epochs 0", "--epochs must be >= 1, got 0"),
    ("bench ctr --batch-size -5", "--batch-size must be >= 1, got -5"),
    ("bench ctr --patience 0", "--patience must be >= 1, got 0"),
    ("bench ctr --seed -1", "--seed must be >= 0, got -1"),
    ("bench ctr --seed 0,x", "--seed must be comma-separated integers, got '0,x'"),
    ("bench ctr --compression nan", "--compression must be comma-separated finite numbers"),
    ("bench ctr --compression 10,inf", "got '10,inf'"),
    ("bench ctr --compression ,", "--compression must be comma-separated finite numbers"),
    ("bench ctr --compression 0.5", "--compression must be >= 1, got 0.5"),
    ("bench ctr --methods nope", "unknown table 'nope'"),
    ("bench ctr --methods hash(", "unbalanced '(' or '[' in 'hash('"),
    ("bench ctr --json adir", "--json must be a file path, got the folder adir"),
    ("bench ctr --json afile/x.jsonl", "--json afile/x.jsonl cannot be created"),
    ("bench ctr --data frappe:nowhere", "does not exist"),
    # bench metric
    ("bench metric --lr nan", "--lr must be finite, got nan"),
    ("bench metric --lr -0.1", "--lr must be > 0, got -0.1"),
    ("bench metric --dim 0", "--dim must be >= 1, got 0"),
    ("bench metric --epochs -1", "--epochs must be >= 1, got -1"),
    ("bench metric --batch-size 1", "--batch-size must be >= 2, got 1"),
    ("bench metric --seed -2", "--seed must be >= 0, got -2"),
    ("bench metric --model resnet", "--model must be one of cnn, cnn_attn, mlp; got 'resnet'"),
    ("bench metric --losses nope", "unknown loss 'nope'"),
    ("bench metric --json adir", "--json must be a file path, got the folder adir"),
    ("bench metric --data mnist:nowhere", "nowhere"),
    # bench retrieval
    ("bench retrieval --k 0", "--k must be >= 1, got 0"),
    ("bench retrieval --n-holdout -1", "--n-holdout must be >= 0, got -1"),
    ("bench retrieval --seed -1", "--seed must be >= 0, got -1"),
    ("bench retrieval --metric dot", "--metric must be one of cos, ip, l2; got 'dot'"),
    ("bench retrieval --methods flat,LSH32", "--methods: index spec token 'LSH32' does not"),
    ("bench retrieval --json adir", "--json must be a file path, got the folder adir"),
    ("bench retrieval --filters --selectivities nan", "--selectivities must be comma-separated"),
    ("bench retrieval --filters --selectivities 0,0.5", "--selectivities must be numbers in"),
    ("bench retrieval --methods none", "--methods none leaves nothing to run"),
    ("bench retrieval --data npy:nope.npy --methods flat", "nope.npy"),
    ("bench retrieval --data npy:adir --methods flat", "adir"),
    # bench graph
    ("bench graph --data edges:e.tsv --train-ratio nan", "--train-ratio must be finite, got nan"),
    ("bench graph --data edges:e.tsv --train-ratio 1.5", "--train-ratio must be in (0, 1), got"),
    ("bench graph --data edges:e.tsv --repeats 0", "--repeats must be >= 1, got 0"),
    ("bench graph --data edges:e.tsv --dim 8,0", "--dim must be >= 1, got 0"),
    ("bench graph --data edges:e.tsv --methods nope", "--methods must be one of euclid_latent"),
    ("bench metric --losses sie", "method 'sie' trains on view pairs: use --data mnist-rot:PATH"),
    ("bench graph --data edges:e.tsv --beta inf", "--beta must be a finite number, got inf"),
    ("bench graph --data edges:e.tsv --weights 1,nan", "--weights must be comma-separated finite"),
    ("bench graph --data edges:e.tsv --json adir", "--json must be a file path, got the folder"),
    ("bench graph --data edges:adir", "adir"),
    ("bench graph --data edges:missing.tsv", "edge list does not exist: missing.tsv"),
    # graph fastrp / orbits
    ("graph fastrp e.tsv -o x.npy --dim 0", "--dim must be >= 1, got 0"),
    ("graph fastrp e.tsv -o x.npy --beta nan", "--beta must be a finite number, got nan"),
    ("graph fastrp e.tsv -o x.npy --weights 1,inf", "--weights must be comma-separated finite"),
    ("graph fastrp e.tsv -o x.npy --seed -1", "--seed must be >= 0, got -1"),
    ("graph fastrp e.tsv -o adir", "--out must be a file path, got the folder adir"),
    ("graph fastrp e.tsv -o afile/x.npy", "afile is a file, not a folder"),
    ("graph fastrp missing.tsv -o x.npy", "edge list does not exist: missing.tsv"),
    ("graph orbits e.tsv -o afile", "--out must be a folder, got the file afile"),
    ("graph orbits e.tsv -o afile/sub", "--out afile/sub cannot be created"),
    ("graph orbits e.tsv -o o --hops 0", "--hops must be comma-separated values of 1, 2, 3"),
    ("graph orbits e.tsv -o o --hops 1,x", "--hops must be comma-separated integers, got '1,x'"),
    # index build / search
    ("index build v.npy -o afile", "--out must be a folder, got the file afile"),
    ("index build v.npy -o afile/ix", "--out afile/ix cannot be created"),
    ("index build v.npy -o ix --metric dot", "--metric must be one of cos, ip, l2; got 'dot'"),
    ("index build v.npy -o ix --spec LSH32", "--spec: index spec token 'LSH32' does not parse"),
    (
        "index build v.npy -o ix --spec PQ3",
        "index spec 'PQ3' on 8-dim vectors: dim must be divisible",
    ),
    ("index build adir -o ix", "vectors folder adir holds no .npy files"),
    ("index build missing.npy -o ix", "vectors path missing.npy does not exist"),
    ("index build afile -o ix", "afile is not a readable .npy file"),
    ("index build v.npy -o ix --ids adir", "ids must be a .npy file, got the folder adir"),
    ("index search missing v.npy", "index folder missing does not exist"),
    # analyze / report / demo
    ("analyze v.npy -o afile", "--out must be a folder, got the file afile"),
    ("analyze v.npy --json adir", "--json must be a file path, got the folder adir"),
    ("analyze v.npy --seed -1", "--seed must be >= 0, got -1"),
    ("analyze adir", "vectors must be a .npy file, got the folder adir"),
    ("analyze v.npy --labels adir", "labels must be a .npy file, got the folder adir"),
    ("analyze compare v.npy adir", "vectors must be a .npy file, got the folder adir"),
    ("report adir", "RESULTS must be a file, got the folder adir"),
    ("report missing.jsonl", "RESULTS missing.jsonl does not exist"),
    ("report afile -o afile", "--out must be a folder, got the file afile"),
    ("demo -o afile", "--out must be a folder, got the file afile"),
]


@pytest.mark.parametrize(("args", "message"), BAD_OPTIONS, ids=[a for a, _ in BAD_OPTIONS])
def test_bad_option_is_one_line(files: Path, args: str, message: str) -> None:
    line = _error_line(runner.invoke(app, args.split()))
    assert message in line
    assert Path("afile").read_text() == "keep me\n"  # an output path never clobbers a file
    assert list(Path("adir").iterdir()) == []


def test_index_search_bad_options(files: Path) -> None:
    assert runner.invoke(app, ["index", "build", "v.npy", "-o", "ix"]).exit_code == 0
    cases = [
        (["-k", "0"], "-k must be >= 1, got 0"),
        (["--show", "-1"], "--show must be >= 0, got -1"),
        (["--json", "adir"], "--json must be a file path, got the folder adir"),
        (["--json", "afile/hits.json"], "afile is a file, not a folder"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["index", "search", "ix", "v.npy", *extra])
        assert message in _error_line(result)
    line = _error_line(runner.invoke(app, ["index", "search", "ix", "adir"]))
    assert "queries must be a .npy file, got the folder adir" in line


def test_unwritable_output_is_refused_up_front(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_common, "_writable", lambda path: False)
    line = _error_line(runner.invoke(app, ["bench", "ctr", "--json", "out/runs.jsonl"]))
    assert "--json out/runs.jsonl cannot be written: no write permission on" in line
    line = _error_line(runner.invoke(app, ["report", "afile", "-o", "adir"]))
    assert "--out adir cannot be written: no write permission" in line


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_folder(files: Path) -> None:
    Path("ro").mkdir(mode=0o555)
    line = _error_line(runner.invoke(app, ["graph", "fastrp", "e.tsv", "-o", "ro/x.npy"]))
    assert "--out ro/x.npy cannot be written" in line


def test_usage_errors_stay_typer_errors() -> None:
    result = runner.invoke(app, ["bench", "ctr", "--dim", "abc"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--dim" in result.stderr


# --------------------------------------------------------------- the top-level handler


def _report_raising(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """``embedlab report`` whose rendering raises ``exc`` (an error no command catches)."""
    import embedlab.report

    cli_report = importlib.import_module("embedlab.cli.report")  # the attribute is the command

    def boom(*args: object, **kwargs: object) -> Path:
        raise exc

    monkeypatch.setattr(cli_report, "read_records", lambda path: [])
    monkeypatch.setattr(embedlab.report, "render_report", boom)


def test_uncaught_error_is_one_line(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _report_raising(monkeypatch, RuntimeError("boom\nsecond line"))
    line = _error_line(runner.invoke(app, ["report", "afile"]))
    assert line == (
        "error: RuntimeError: boom second line (internal error; rerun with --debug for the "
        "traceback)"
    )


def test_uncaught_os_error_names_the_path(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _report_raising(monkeypatch, PermissionError(13, "Permission denied", "rep/index.html"))
    line = _error_line(runner.invoke(app, ["report", "afile", "-o", "rep"]))
    assert line == "error: rep/index.html: Permission denied"


def test_keyboard_interrupt_exits_130(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _report_raising(monkeypatch, KeyboardInterrupt())
    assert _error_line(runner.invoke(app, ["report", "afile"]), code=130) == "error: interrupted"


def test_debug_shows_the_traceback(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _report_raising(monkeypatch, RuntimeError("boom"))
    result = runner.invoke(app, ["--debug", "report", "afile"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "in boom" in result.stderr and "RuntimeError: boom" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: RuntimeError: boom")
    # the flag does not stick to the next run
    assert "Traceback" not in runner.invoke(app, ["report", "afile"]).stderr


def test_debug_env_var_and_caught_errors() -> None:
    """EMBEDLAB_DEBUG=1 works like --debug, also for errors a command turns into fail()."""
    result = runner.invoke(app, ["bench", "ctr", "--lr", "nan"], env={"EMBEDLAB_DEBUG": "1"})
    assert result.exit_code == 2
    assert "Traceback (most recent call last):" in result.stderr
    assert "ValueError: --lr must be finite, got nan" in result.stderr
    assert result.stderr.splitlines()[-1] == "error: --lr must be finite, got nan"
    result = runner.invoke(app, ["bench", "ctr", "--lr", "nan"], env={"EMBEDLAB_DEBUG": "0"})
    _error_line(result)


def test_main_script(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["embedlab", "bench", "metric", "--lr", "nan"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == "error: --lr must be finite, got nan\n"


def test_installed_script_has_no_rich_traceback(tmp_path: Path) -> None:
    """The defects of the issue, through a real process: ``--lr nan`` and ``-o FILE``."""
    (tmp_path / "afile").write_text("x")
    code = "from embedlab.cli import main; main()"
    for args in (["bench", "ctr", "--lr", "nan"], ["demo", "-o", "afile"]):
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if k != "EMBEDLAB_DEBUG"},
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("error: ")
    assert (tmp_path / "afile").read_text() == "x"


# --------------------------------------------------------------- helpers


def test_fail_prints_one_literal_line(capsys: pytest.CaptureFixture[str]) -> None:
    exit_ = fail("bad [bold]x[/bold]\n  continued" + " y" * 120)
    assert exit_.exit_code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: bad [bold]x[/bold] continued y y")
    assert err.count("\n") == 1  # long messages are not wrapped either
    assert fail("stop", code=130).exit_code == 130


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (ValueError("dim must be >= 1, got 0"), "dim must be >= 1, got 0"),
        (TypeError("x must be an integer"), "x must be an integer"),
        (FileNotFoundError(2, "No such file or directory", "a.npy"), "a.npy: No such file"),
        (OSError(18, "Invalid cross-device link", "a", None, "b"), "a -> b: Invalid cross"),
        (FileNotFoundError("data file does not exist: x"), "data file does not exist: x"),
        (KeyError("k"), "KeyError: 'k' (internal error; rerun with --debug"),
        (RuntimeError(), "RuntimeError (internal error"),
    ],
)
def test_describe_error(exc: BaseException, text: str) -> None:
    assert describe_error(exc).startswith(text)
