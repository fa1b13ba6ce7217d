"""``embedlab index build/search`` through Typer's CliRunner, on the real ``embedlab`` app."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from embedlab.cli import app
from embedlab.index import load_index

runner = CliRunner()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 32)).astype(np.float32)
    np.save(tmp_path / "vectors.npy", x)
    np.save(tmp_path / "queries.npy", x[:4] + 0.01)
    return tmp_path / "vectors.npy", tmp_path / "queries.npy"


def test_build_then_search(files: tuple[Path, Path], tmp_path: Path) -> None:
    vectors, queries = files
    out = tmp_path / "my-index"
    result = runner.invoke(
        app,
        ["index", "build", str(vectors), "--spec", "Binary,Rerank(Flat)", "--metric", "cos",
         "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Binary,Rerank(Flat,k_factor=10)" in result.output
    assert load_index(out).ntotal == 200
    hits = tmp_path / "hits.json"
    result = runner.invoke(
        app, ["index", "search", str(out), str(queries), "-k", "5", "--json", str(hits)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(hits.read_text())
    assert np.array(doc["ids"]).shape == (4, 5) and np.array(doc["scores"]).shape == (4, 5)
    assert [row[0] for row in doc["ids"]] == [0, 1, 2, 3]
    assert "queries/s" in result.output


def test_build_with_ids_and_padding(files: tuple[Path, Path], tmp_path: Path) -> None:
    vectors, queries = files
    small = tmp_path / "small.npy"
    np.save(small, np.load(vectors)[:3])
    np.save(tmp_path / "ids.npy", np.array([7, 8, 9]))
    out = tmp_path / "ix"
    args = ["index", "build", str(small), "-o", str(out), "--ids", str(tmp_path / "ids.npy")]
    assert runner.invoke(app, args).exit_code == 0
    hits = tmp_path / "hits.json"
    result = runner.invoke(
        app, ["index", "search", str(out), str(queries), "-k", "5", "--json", str(hits)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(hits.read_text())
    assert doc["ids"][0][3:] == [-1, -1] and doc["scores"][0][3:] == [None, None]
    assert sorted(doc["ids"][0][:3]) == [7, 8, 9]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--spec", "LSH32"], "'LSH32' does not parse"),
        (["--metric", "dot"], "metric must be one of cos, ip, l2"),
    ],
)
def test_build_bad_input(
    files: tuple[Path, Path], tmp_path: Path, extra: list[str], match: str
) -> None:
    vectors, _ = files
    result = runner.invoke(app, ["index", "build", str(vectors), "-o", str(tmp_path / "i"), *extra])
    assert result.exit_code == 2
    assert match in " ".join(result.output.split())


def test_build_missing_vectors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["index", "build", str(tmp_path / "no.npy"), "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_search_errors(files: tuple[Path, Path], tmp_path: Path) -> None:
    vectors, queries = files
    result = runner.invoke(app, ["index", "search", str(tmp_path / "none"), str(queries)])
    assert result.exit_code == 2 and "does not exist" in result.output
    out = tmp_path / "ix"
    assert runner.invoke(app, ["index", "build", str(vectors), "-o", str(out)]).exit_code == 0
    result = runner.invoke(app, ["index", "search", str(out), str(queries), "-k", "0"])
    assert result.exit_code == 2 and "k must be >= 1, got 0" in result.output
    np.save(tmp_path / "bad.npy", np.zeros((2, 5), np.float32))
    result = runner.invoke(app, ["index", "search", str(out), str(tmp_path / "bad.npy")])
    assert result.exit_code == 2 and "dim=32" in " ".join(result.output.split())


def _one_error_line(result_stderr: str) -> str:
    lines = result_stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result_stderr
    return lines[0]


def test_build_into_a_file_leaves_it_untouched(files: tuple[Path, Path], tmp_path: Path) -> None:
    vectors, _ = files
    target = tmp_path / "notes.txt"
    target.write_text("mine\n")
    result = runner.invoke(app, ["index", "build", str(vectors), "-o", str(target)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"--out must be a folder, got the file {target}" in _one_error_line(result.stderr)
    assert target.read_text() == "mine\n"


@pytest.mark.parametrize("force", [False, True])
def test_build_into_a_foreign_folder_leaves_it_untouched(
    files: tuple[Path, Path], tmp_path: Path, force: bool
) -> None:
    vectors, _ = files
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"\xff\xd8")
    args = ["index", "build", str(vectors), "-o", str(folder)] + (["--force"] if force else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    line = _one_error_line(result.stderr)
    assert f"refusing to save an index into {folder}: it is a non-empty folder" in line
    assert [p.name for p in folder.iterdir()] == ["cat.jpg"]
    assert (folder / "cat.jpg").read_bytes() == b"\xff\xd8"


def test_rebuild_needs_force(files: tuple[Path, Path], tmp_path: Path) -> None:
    vectors, _ = files
    out = tmp_path / "ix"
    assert runner.invoke(app, ["index", "build", str(vectors), "-o", str(out)]).exit_code == 0
    manifest = (out / "index.json").read_bytes()
    result = runner.invoke(app, ["index", "build", str(vectors), "-o", str(out), "--spec", "Int8"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    line = _one_error_line(result.stderr)
    assert f"index path {out} already holds an embedlab index" in line and "--force" in line
    assert (out / "index.json").read_bytes() == manifest
    assert load_index(out).spec() == "Flat"


def test_rebuild_with_force(files: tuple[Path, Path], tmp_path: Path) -> None:
    vectors, _ = files
    out = tmp_path / "ix"
    assert runner.invoke(app, ["index", "build", str(vectors), "-o", str(out)]).exit_code == 0
    args = ["index", "build", str(vectors), "-o", str(out), "--spec", "Int8", "--force"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert load_index(out).spec() == "Int8"


def test_build_from_a_shard_folder_and_search_with_params(tmp_path: Path) -> None:
    from embedlab.data import write_npy_shards
    from embedlab.index import index_factory

    x = np.random.default_rng(5).standard_normal((900, 8)).astype(np.float32)
    write_npy_shards(tmp_path / "shards", x, rows_per_shard=250)
    out = tmp_path / "ix"
    result = runner.invoke(
        app,
        [
            "index",
            "build",
            str(tmp_path / "shards"),
            "-o",
            str(out),
            "--spec",
            "Int8",
            "--chunk-rows",
            "100",
            "--train-size",
            "300",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "peak RSS" in result.stdout
    loaded = load_index(out)
    ref = index_factory(8, "Int8")
    ref.train(x)
    ref.add(x)
    assert loaded.ntotal == 900
    np.testing.assert_array_equal(loaded.ids, np.arange(900))
    same = (loaded.search(x[:50], 5)[1] == ref.search(x[:50], 5)[1]).mean()
    assert same > 0.9  # trained on a sample instead of everything; measured 0.99
    np.save(tmp_path / "q.npy", x[:3])
    result = runner.invoke(
        app, ["index", "search", str(out), str(tmp_path / "q.npy"), "--nprobe", "4"]
    )
    assert result.exit_code == 2
    assert "search parameter 'nprobe' is not taken by Int8; valid: none" in result.stderr
