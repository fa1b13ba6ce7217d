"""explain_embedding: top-k features, surrogate fidelity, rules; the output folder; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

from embedlab.analysis import explain_embedding
from embedlab.analysis._explain_io import MARKER, write_explain_folder
from embedlab.analysis._explain_rules import tree_rules
from embedlab.analysis.explain import feature_importance
from embedlab.cli import app

KEY = {0, 5, 9}


def _data(n: int = 600, d: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Only features 0, 5 and 9 decide the label (4 classes: how many of them are > 0);
    they keep a margin of 0.5 from the threshold."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    for j in KEY:
        x[:, j] = np.sign(x[:, j]) * (0.5 + np.abs(x[:, j]))
    y = (x[:, 0] > 0).astype(int) + (x[:, 5] > 0) + (x[:, 9] > 0)
    return x, y


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize("method", ["permutation", "occlusion", "gradient"])
def test_known_features_rank_top_and_surrogate_is_faithful(method: str) -> None:
    x, y = _data()
    res = explain_embedding(x, y, ks=[3, 10], method=method)  # type: ignore[arg-type]
    assert set(res.ranking[:3].tolist()) == KEY
    assert res.black_box_accuracy > 0.8  # measured 0.87
    assert res.fidelity[3] > 0.8  # measured 0.84-0.87
    assert res.fidelity[3] > res.fidelity_random[3] + 0.3  # random 3 features: 0.3-0.5
    mentioned = {f for rules in res.rules.values() for r in rules for f in r.features()}
    assert mentioned >= KEY
    text = res.rules_text()
    assert all(f"x{j}" in text for j in KEY) and "IF " in text and "THEN class" in text
    json.dumps(res.to_dict(), allow_nan=False)


def test_embedding_target_uses_its_clusters() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 12))
    emb = np.stack([3 * np.sign(x[:, 2]), 3 * np.sign(x[:, 7])], axis=1) + 0.1 * rng.normal(
        size=(500, 2)
    )
    res = explain_embedding(x, emb, ks=[2], n_clusters=4, epochs=40)
    assert res.target == "clusters" and res.n_classes == 4
    assert set(res.ranking[:2].tolist()) == {2, 7}
    assert res.fidelity[2] > 0.9  # measured 0.99


def test_labels_keep_their_values_in_rules() -> None:
    x, y = _data(n=300)
    res = explain_embedding(x, y + 10, ks=[3], epochs=20, top_classes=2)
    assert set(res.rules) <= {10, 11, 12, 13} and len(res.rules) == 2
    assert all(r.label == c for c, rules in res.rules.items() for r in rules)


def test_importance_against_a_naive_loop() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 4))
    w = np.array([3.0, 0.0, -1.0, 0.5])

    def proba(a: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-(a @ w)))
        return np.stack([1 - p, p], axis=1)

    got = feature_importance(x, proba, method="occlusion")
    base = proba(x)
    own = base.argmax(1)
    want = []
    for j in range(4):
        z = x.copy()
        z[:, j] = x[:, j].mean()
        want.append(np.mean([base[i, own[i]] - proba(z)[i, own[i]] for i in range(50)]))
    np.testing.assert_allclose(got, want)
    assert got[1] == 0.0 and np.argmax(got) == 0
    perm = feature_importance(x, proba, method="permutation", seed=3)
    assert perm[1] == 0.0 and np.argmax(perm) == 0


def test_rules_agree_with_the_tree() -> None:
    x, y = _data(n=400)
    cols = np.array([9, 0, 5, 3])
    tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(x[:, cols], y)
    rules = tree_rules(tree, cols, tree.classes_)
    assert sum(r.support for r in rules) == 400
    pred = tree.predict(x[:, cols])
    for i in range(0, 400, 7):  # each row satisfies exactly one rule, with the tree's class
        hits = [
            r
            for r in rules
            if all(
                (lo is None or x[i, f] > lo) and (hi is None or x[i, f] <= hi)
                for f, lo, hi in r.conditions
            )
        ]
        assert len(hits) == 1 and hits[0].label == pred[i]


def test_own_black_box_and_gradient_needs_one() -> None:
    x, y = _data(n=200)

    def proba(a: np.ndarray) -> np.ndarray:
        s = (a[:, 0] > 0).astype(float)
        return np.stack([1 - s, s, np.zeros_like(s), np.zeros_like(s)], axis=1)

    res = explain_embedding(x, y, ks=[1], predict_proba=proba, method="occlusion")
    assert res.ranking[0] == 0 and res.fidelity[1] == 1.0
    with pytest.raises(ValueError, match="method='gradient' needs a black box"):
        explain_embedding(x, y, ks=[1], predict_proba=proba, method="gradient")
    with pytest.raises(ValueError, match=r"predict_proba must return \(150, 4\) probabilities"):
        explain_embedding(x, y, ks=[1], predict_proba=lambda a: proba(a)[:, :2])


def test_bad_input() -> None:
    x, y = _data(n=100)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="X must be finite, got NaN or inf in row 3"):
        explain_embedding(bad, y)
    with pytest.raises(ValueError, match=r"same number of rows.*got 100 and 99"):
        explain_embedding(x, y[:99])
    with pytest.raises(ValueError, match=r"ks must be <= n_features \(30\), got k=50"):
        explain_embedding(x, y, ks=[10, 50])
    with pytest.raises(ValueError, match="labels must be integer class ids"):
        explain_embedding(x, y + 0.5)
    with pytest.raises(ValueError, match="at least 2 classes"):
        explain_embedding(x, np.zeros(100, dtype=int))
    with pytest.raises(ValueError, match="method must be one of"):
        explain_embedding(x, y, method="shap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="feature_names must have one name per feature"):
        explain_embedding(x, y, feature_names=["a"])
    emb = np.ones((100, 3))
    emb[0, 0] = np.inf
    with pytest.raises(ValueError, match="labels_or_embedding must be finite"):
        explain_embedding(x, emb)


def test_default_ks_are_capped_at_the_feature_count() -> None:
    x, y = _data(n=200, d=15)
    assert explain_embedding(x, y, epochs=3).ks == (10, 15)


def test_folder_is_atomic_and_never_overwrites_foreign_folders(tmp_path: Path) -> None:
    x, y = _data(n=200)
    res = explain_embedding(x, y, ks=[3], epochs=3)
    out = tmp_path / "explain"
    write_explain_folder(res, out)
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "rules.txt", "summary.json"])
    assert json.loads((out / "summary.json").read_text())["fidelity"]["3"] == res.fidelity[3]
    with pytest.raises(ValueError, match="already holds an explanation; pass force=True"):
        write_explain_folder(res, out)
    write_explain_folder(res, out, force=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    (out / "mine.txt").write_text("keep")
    with pytest.raises(ValueError, match="holds files embedlab did not write"):
        write_explain_folder(res, out, force=True)
    assert (out / "mine.txt").read_text() == "keep"
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "a.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="non-empty folder embedlab did not write"):
        write_explain_folder(res, foreign, force=True)
    assert [p.name for p in foreign.iterdir()] == ["a.jpg"]
    empty = tmp_path / "empty"
    empty.mkdir()
    write_explain_folder(res, empty)
    assert (empty / "rules.txt").is_file()
    afile = tmp_path / "f"
    afile.write_text("x")
    with pytest.raises(ValueError, match="must be a folder, got a file"):
        write_explain_folder(res, afile)


def test_cli_explain(tmp_path: Path) -> None:
    x, y = _data(n=300)
    np.save(tmp_path / "v.npy", x.astype(np.float32))
    np.save(tmp_path / "l.npy", y)
    out = tmp_path / "explain"
    runner = CliRunner()
    args = ["analyze", "explain", str(tmp_path / "v.npy"), "--labels", str(tmp_path / "l.npy")]
    r = runner.invoke(app, [*args, "--k", "3,10", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "fidelity" in r.output and "THEN class" in r.output
    doc = json.loads((out / "summary.json").read_text())
    assert set(doc["fidelity"]) == {"3", "10"}
    assert {t["feature"] for t in doc["top_features"][:3]} == KEY
    assert "x0" in (out / "rules.txt").read_text()
    r = runner.invoke(app, [*args, "--k", "3", "-o", str(out)])
    assert r.exit_code == 2 and "--force" in r.output
    r = runner.invoke(app, [*args, "--k", "31"])
    assert r.exit_code == 2 and "ks must be <= n_features (30), got k=31" in r.output
    r = runner.invoke(app, ["analyze", "explain", str(tmp_path / "v.npy")])
    assert r.exit_code == 2 and "explain needs --labels" in r.output
