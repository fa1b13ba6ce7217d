"""``embedlab graph fastrp|orbits`` and ``embedlab bench graph`` through Typer's CliRunner,
on the real ``embedlab`` app (so errors go through its one-line handler)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.io
import scipy.sparse as sp
import typer
from typer.testing import CliRunner

from embedlab.bench import read_records
from embedlab.cli import app

runner = CliRunner()


def _app() -> typer.Typer:
    return app


def _edges(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_fastrp_integer_ids(tmp_path: Path) -> None:
    edges = _edges(tmp_path / "e.tsv", "0 1\n1 2\n2 0\n2 5\n")
    out = tmp_path / "emb" / "e.npy"
    res = runner.invoke(_app(), ["graph", "fastrp", str(edges), "--dim", "8", "-o", str(out)])
    assert res.exit_code == 0, res.output
    emb = np.load(out, allow_pickle=False)
    # ids are names, not row numbers: 0, 1, 2, 5 are four rows (an id of 10**12 costs one row)
    assert emb.shape == (4, 8) and emb.dtype == np.float32
    mapping = (tmp_path / "emb" / "e.npy.nodes.tsv").read_text().splitlines()
    assert mapping == ["row\tid", "0\t0", "1\t1", "2\t2", "3\t5"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["e.npy", "e.npy.nodes.tsv"]


def test_fastrp_string_ids_write_mapping(tmp_path: Path) -> None:
    edges = _edges(tmp_path / "e.csv", "a,b\nb,c\nc,a\n")
    out = tmp_path / "e.npy"
    args = ["graph", "fastrp", str(edges), "--dim", "4", "-o", str(out), "--weights", "1,2"]
    res = runner.invoke(_app(), [*args, "--beta", "0", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert np.load(out).shape == (3, 4)
    mapping = (tmp_path / "e.npy.nodes.tsv").read_text().splitlines()
    assert mapping == ["row\tid", "0\ta", "1\tb", "2\tc"]


def test_fastrp_bad_input_is_a_clean_error(tmp_path: Path) -> None:
    edges = _edges(tmp_path / "e.tsv", "0 1\n1 2 3 4\n")
    res = runner.invoke(_app(), ["graph", "fastrp", str(edges), "-o", str(tmp_path / "x.npy")])
    assert res.exit_code == 2
    assert "e.tsv line 2" in res.output
    assert len(res.stderr.splitlines()) == 1 and "Traceback" not in res.output
    res = runner.invoke(
        _app(), ["graph", "fastrp", str(tmp_path / "missing.tsv"), "-o", str(tmp_path / "x.npy")]
    )
    assert res.exit_code == 2 and "does not exist" in res.output


def test_orbits_writes_npz_and_index(tmp_path: Path) -> None:
    edges = _edges(tmp_path / "e.tsv", "0 1\n1 2\n2 3\n3 0\n0 2\n3 4\n")
    out = tmp_path / "orbits"
    res = runner.invoke(_app(), ["graph", "orbits", str(edges), "-o", str(out)])
    assert res.exit_code == 0, res.output
    index = json.loads((out / "index.json").read_text())
    assert len(index["matrices"]) == 28 and index["n_nodes"] == 5
    first = index["matrices"][0]
    assert first["name"] == "o0_o0_h1" and first["hop"] == 1
    mat = sp.load_npz(out / "o0_o0_h1.npz")
    assert mat.shape == (5, 5) and mat.nnz == 12
    assert len(list(out.glob("*.npz"))) == 28
    res = runner.invoke(_app(), ["graph", "orbits", str(edges), "-o", str(out), "--hops", "9"])
    assert res.exit_code == 2 and "hops must be" in res.output


def test_bench_graph_mat(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    blocks = np.repeat(np.arange(2), 40)
    prob = np.where(blocks[:, None] == blocks[None, :], 0.2, 0.02)
    upper = np.triu(rng.random(prob.shape) < prob, 1).astype(float)
    group = np.eye(2)[blocks]
    path = tmp_path / "toy.mat"
    scipy.io.savemat(path, {"network": sp.csc_matrix(upper + upper.T), "group": group})
    out = tmp_path / "runs.jsonl"
    res = runner.invoke(
        _app(),
        [
            *("bench", "graph", "--data", f"mat:{path}", "--dim", "8,16", "--repeats", "2"),
            *("--methods", "fastrp,randproj", "--json", str(out)),
        ],
    )
    assert res.exit_code == 0, res.output
    recs = read_records(out)
    assert [(r.method, r.params["dim"]) for r in recs] == [
        ("fastrp", 8),
        ("fastrp", 16),
        ("randproj", 8),
        ("randproj", 16),
    ]
    assert "micro-F1" in res.output


def test_bench_graph_errors(tmp_path: Path) -> None:
    res = runner.invoke(_app(), ["bench", "graph", "--data", "nope"])
    assert res.exit_code == 2 and "KIND:PATH" in res.output
    edges = _edges(tmp_path / "e.tsv", "0 1\n")
    res = runner.invoke(_app(), ["bench", "graph", "--data", f"edges:{edges}"])
    assert res.exit_code == 2 and "has no labels" in res.output
