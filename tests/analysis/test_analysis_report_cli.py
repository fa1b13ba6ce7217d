"""analyze_embeddings / compare_embeddings, the HTML page, and the `embedlab analyze` command."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from embedlab.analysis import (
    analyze_embeddings,
    compare_embeddings,
    linear_cka,
    render_analysis,
    twonn,
)
from embedlab.cli import app


def _data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=n)
    x = rng.normal(size=(n, 6)) @ rng.normal(size=(6, 32)) + 3.0 * np.eye(32)[labels]
    return x.astype(np.float32), labels


def _app() -> typer.Typer:
    """The real ``embedlab`` app: errors go through its one-line handler."""
    return app


def test_analyze_embeddings_matches_the_functions(tmp_path: Path) -> None:
    x, y = _data()
    res = analyze_embeddings(x, y)
    assert res.twonn.dimension == pytest.approx(twonn(x))
    assert res.neural_collapse is not None and res.n_classes == 4
    d = res.to_dict()
    json.dumps(d, allow_nan=False)  # JSON-safe
    assert d["mle_k"] == 20 and set(d["pca_dims"]) == {"0.9", "0.95", "0.99"}
    page = render_analysis(res, tmp_path / "out")
    text = page.read_text(encoding="utf-8")
    ET.fromstring(text.split("\n", 1)[1])  # well-formed XML after the doctype
    assert "TwoNN: neighbour-ratio fit" in text and "PCA: explained variance" in text
    assert "<script" not in text and "http://" not in text.replace("http://www.w3.org", "")
    assert not [p for p in page.parent.iterdir() if p.name.endswith(".tmp")]


def test_tiny_input_shrinks_k() -> None:
    res = analyze_embeddings(np.random.default_rng(0).normal(size=(12, 3)))
    assert res.mle_k == 11 and res.hubness_k == 10 and res.notes


def test_compare_embeddings(tmp_path: Path) -> None:
    x, _ = _data()
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(32, 32)))
    other = np.random.default_rng(2).normal(size=(600, 8))
    res = compare_embeddings([x, x @ q, other], ["a", "b", "c"])
    assert res.linear_cka[0, 1] == pytest.approx(1.0, abs=1e-6)
    assert res.linear_cka[0, 2] == pytest.approx(linear_cka(x, other))
    assert res.procrustes_error[0, 1] < 1e-5 < res.procrustes_error[0, 2]
    json.dumps(res.to_dict(), allow_nan=False)
    text = render_analysis(res, tmp_path).read_text(encoding="utf-8")
    assert "linear CKA" in text and "RBF CKA" in text
    ET.fromstring(text.split("\n", 1)[1])
    with pytest.raises(ValueError, match=r"compare needs at least 2 embeddings, got 1"):
        compare_embeddings([x])
    with pytest.raises(ValueError, match=r"same number of rows .* a has 600, b has 10"):
        compare_embeddings([x, x[:10]], ["a", "b"])


def test_cli_analyze_single(tmp_path: Path) -> None:
    x, y = _data()
    np.save(tmp_path / "v.npy", x)
    np.save(tmp_path / "l.npy", y)
    out_json, out_dir = tmp_path / "r.json", tmp_path / "html"
    result = CliRunner().invoke(
        _app(),
        ["analyze", str(tmp_path / "v.npy"), "--labels", str(tmp_path / "l.npy"),
         "--json", str(out_json), "-o", str(out_dir)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = json.loads(out_json.read_text())
    assert record["twonn"] == pytest.approx(twonn(x))
    assert record["neural_collapse"]["n_classes"] == 4
    assert (out_dir / "index.html").is_file()
    assert "twonn" in result.output


def test_cli_analyze_compare(tmp_path: Path) -> None:
    x, _ = _data()
    np.save(tmp_path / "a.npy", x)
    np.save(tmp_path / "b.npy", 2 * x)
    out_json = tmp_path / "c.json"
    args = ["analyze", "compare", str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]
    result = CliRunner().invoke(_app(), [*args, "--json", str(out_json), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert json.loads(out_json.read_text())["linear_cka"][0][1] == pytest.approx(1.0)
    assert "linear CKA a / b" in result.output


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (None, ["missing.npy"], "vectors file does not exist"),
        ("obj", ["v.npy"], "not a numeric .npy array"),
        ("nan", ["v.npy"], "NaN or inf in row 4"),
        ("1d", ["v.npy"], "must be a 2-D array"),
        ("ok", ["compare", "v.npy"], "compare needs at least 2 .npy files, got 1"),
        ("ok", ["v.npy", "v.npy"], "expected one VECTORS.npy"),
        ("ok", ["v.npy", "--labels", "bad_labels.npy"], r"labels must have shape \(50,\)"),
    ],
)
def test_cli_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: str | None, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(0).normal(size=(50, 4))
    np.save("bad_labels.npy", np.zeros(7, dtype=np.int64))
    if make == "obj":
        np.save("v.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif make == "nan":
        x[4, 2] = np.nan
        np.save("v.npy", x)
    elif make == "1d":
        np.save("v.npy", x[:, 0])
    elif make == "ok":
        np.save("v.npy", x)
    result = CliRunner().invoke(_app(), ["analyze", *args])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output
    assert re.search(message, " ".join(result.output.split())), result.output
