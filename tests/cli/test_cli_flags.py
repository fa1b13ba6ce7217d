"""One CLI grammar: the shared flags exist where they make sense and mean one thing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from embedlab.cli import app
from embedlab.cli._flags import apply_threads

runner = CliRunner()

#: leaf commands that compute (train, embed, build, search): they take --threads and --quiet
COMPUTING = {
    "analyze",
    "bench cluster",
    "bench ctr",
    "bench graph",
    "bench metric",
    "bench retrieval",
    "data prepare",
    "demo",
    "graph fastrp",
    "graph orbits",
    "index build",
    "index search",
    "bench gcd",
    "bench disentangle",
    "bench bundle",
}
TRAINING = {"bench ctr", "bench metric"}


def _leaves() -> dict[str, Any]:
    root = typer.main.get_command(app)
    out: dict[str, Any] = {}

    def walk(cmd: Any, path: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out[" ".join(path)] = cmd

    walk(root, [])
    return out


def _options(cmd: Any) -> dict[str, list[str]]:
    return {
        p.name: list(p.opts) for p in cmd.params if getattr(p, "param_type_name", "") == "option"
    }


def test_shared_flags_everywhere_they_apply() -> None:
    leaves = _leaves()
    assert set(leaves) >= COMPUTING, sorted(COMPUTING - set(leaves))
    for name, cmd in leaves.items():
        opts = _options(cmd)
        if name in COMPUTING:
            assert opts.get("threads") == ["--threads"], name
            assert sorted(opts.get("quiet", [])) == ["--quiet", "-q"], name
        if name in TRAINING:
            assert opts.get("device") == ["--device"], name
        # one meaning per short flag
        for key, flags in opts.items():
            if "-o" in flags:
                assert key == "out" and "--out" in flags, (name, key)
            if "-k" in flags:
                assert key == "k" and "--k" in flags, (name, key)
            if "-q" in flags:
                assert key == "quiet", (name, key)
        if "json_out" in opts:
            assert opts["json_out"] == ["--json"], name


def test_threads_reach_the_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    before = torch.get_num_threads()
    try:
        apply_threads(1)
        assert torch.get_num_threads() == 1
        assert os.environ["OMP_NUM_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="--threads"):
        apply_threads(0)


def test_bad_threads_and_device_are_one_line_errors(tmp_path: Path) -> None:
    edges = tmp_path / "e.tsv"
    edges.write_text("0 1\n1 2\n2 0\n")
    res = runner.invoke(app, ["graph", "fastrp", str(edges), "-o", str(tmp_path / "x.npy"),
                              "--threads", "0"])  # fmt: skip
    assert res.exit_code != 0 and "--threads" in res.output
    assert not (tmp_path / "x.npy").exists()
    res = runner.invoke(app, ["bench", "ctr", "--device", "nosuch", "--methods", "full",
                              "--epochs", "1", "--quiet"])  # fmt: skip
    assert res.exit_code != 0 and "--device" in res.output
    assert "Traceback" not in res.output


def test_quiet_fastrp_prints_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, ""))  # restored after the test
    before = torch.get_num_threads()
    edges = tmp_path / "e.tsv"
    edges.write_text("0 1\n1 2\n2 0\n2 3\n")
    out = tmp_path / "emb.npy"
    res = runner.invoke(app, ["graph", "fastrp", str(edges), "-o", str(out), "--dim", "8",
                              "-q", "--threads", "1"])  # fmt: skip
    torch.set_num_threads(before)
    assert res.exit_code == 0, res.output
    assert res.output.strip() == ""
    assert np.load(out).shape == (4, 8)


def test_every_command_help_has_an_example() -> None:
    missing = [name for name, cmd in _leaves().items() if "Example" not in (cmd.help or "")]
    assert missing == []
