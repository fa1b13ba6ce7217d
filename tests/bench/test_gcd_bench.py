"""GCD protocol: --known parsing, the split, All/Old/New accuracy, the suite and its CLI."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from embedlab.bench import read_records
from embedlab.bench.cluster import make_blobs
from embedlab.bench.gcd import gcd_accuracy, gcd_split, parse_known, run_gcd_bench
from embedlab.cli import app
from embedlab.evaluate.cluster_scores import cluster_accuracy


def test_parse_known() -> None:
    assert parse_known("0-4") == (0, 1, 2, 3, 4)
    assert parse_known("7, 0,2-3") == (0, 2, 3, 7)
    assert parse_known([3, 1]) == (1, 3)


@pytest.mark.parametrize("bad", ["", "0-", "a", "4-1", "0,0", "1;2", "-1"])
def test_parse_known_errors_name_the_option(bad: str) -> None:
    with pytest.raises(ValueError, match="--known"):
        parse_known(bad)


def naive_gcd_accuracy(true: list[int], pred: list[int], old: list[bool]) -> tuple[float, ...]:
    """Best one-to-one map by brute force over permutations, then the three shares."""
    classes, clusters = sorted(set(true)), sorted(set(pred))
    best, best_map = -1, {}
    for perm in itertools.permutations(classes, len(clusters)):
        m = dict(zip(clusters, perm, strict=True))
        right = sum(m[p] == t for p, t in zip(pred, true, strict=True))
        if right > best:
            best, best_map = right, m
    ok = [best_map[p] == t for p, t in zip(pred, true, strict=True)]
    old_ok = [o for o, is_old in zip(ok, old, strict=True) if is_old]
    new_ok = [o for o, is_old in zip(ok, old, strict=True) if not is_old]
    return best / len(true), sum(old_ok) / len(old_ok), sum(new_ok) / len(new_ok)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_gcd_accuracy_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 4, 30)
    pred = rng.integers(0, 4, 30)
    old = true < 2
    got = gcd_accuracy(true, pred, old)
    want = naive_gcd_accuracy(true.tolist(), pred.tolist(), old.tolist())
    # the matching can tie; All is the optimum either way
    assert got["all_acc"] == pytest.approx(want[0])
    assert got["all_acc"] == pytest.approx(cluster_accuracy(true, pred))
    n_old = old.sum()
    assert got["all_acc"] == pytest.approx(
        (got["old_acc"] * n_old + got["new_acc"] * (30 - n_old)) / 30
    )


def test_split_labels_half_of_the_known_classes() -> None:
    data = make_blobs(n_samples=200, n_clusters=4, dim=4, seed=0)
    split = gcd_split(data, (0, 1), labelled_fraction=0.5, seed=3)
    for c in range(4):
        n_c = int((data.y == c).sum())
        n_lab = int(split.labelled[data.y == c].sum())
        assert n_lab == (n_c // 2 if c < 2 else 0)
    pool_y = data.y[split.unlabelled]
    assert set(pool_y.tolist()) == {0, 1, 2, 3}
    assert split.old_mask().sum() == (pool_y < 2).sum()
    with pytest.raises(ValueError, match=r"--known names classes \[7\]"):
        gcd_split(data, (0, 7))
    with pytest.raises(ValueError, match="--known must leave at least one new class"):
        gcd_split(data, (0, 1, 2, 3))


def test_suite_on_tiny_blobs() -> None:
    data = make_blobs(n_samples=100, n_clusters=4, dim=8, seed=1)
    recs = run_gcd_bench(
        data, known="0-1", methods=["raw", "euclidean", "hypcd"], epochs=1, batch_size=50,
        dim=8, seeds=[0], threads=1,
    )  # fmt: skip
    assert [r.method for r in recs] == ["raw", "euclidean", "hypcd"]
    for r in recs:
        assert r.status == "ok", r.error
        assert r.suite == "gcd" and set(r.metrics) == {"all_acc", "old_acc", "new_acc", "nmi"}
        assert all(0.0 <= v <= 1.0 for v in r.metrics.values())
    assert recs[0].metrics["all_acc"] == 1.0  # separated blobs: raw k-means is exact
    assert recs[2].params["loss_curvature"] == 0.1 and recs[1].params["loss_alpha"] == 0.0
    assert recs[1].params["n_unlabelled"] == 100 - recs[1].params["n_labelled"]
    with pytest.raises(ValueError, match="loss must be one of"):
        run_gcd_bench(data, known="0-1", methods=["hypcdd"])


def test_cli_writes_records(tmp_path: Path) -> None:
    out = tmp_path / "runs.jsonl"
    result = CliRunner().invoke(
        app,
        ["bench", "gcd", "--methods", "raw,euclidean", "--epochs", "1", "--seed", "0,1",
         "--dim", "8", "--batch-size", "256", "--threads", "1", "--json", str(out), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Old" in result.output and "New" in result.output
    recs = read_records(out)
    assert [(r.method, r.seed) for r in recs] == [
        ("raw", 0), ("euclidean", 0), ("raw", 1), ("euclidean", 1),
    ]  # fmt: skip
    header, first = (json.loads(x) for x in out.read_text().splitlines()[:2])
    assert header["kind"] == "header" and first["suite"] == "gcd"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--known", "0-x"], "--known must be class ids or ranges"),
        (["--known", "0-11"], "--known names classes [10, 11]"),
        (["--methods", "raw,hypcdd"], "loss must be one of"),
        (["--seed", "a"], "--seed must be comma-separated integers"),
        (["--assign", "sskmeans"], "--assign must be one of kmeans, ss-kmeans"),
    ],
)
def test_cli_bad_input(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["bench", "gcd", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_same_seed_same_numbers() -> None:
    data = make_blobs(n_samples=80, n_clusters=4, dim=6, seed=2)
    a, b = (
        run_gcd_bench(data, known="0-1", methods=["hypcd"], epochs=1, batch_size=32, dim=6,
                      seeds=[5], threads=1)
        for _ in range(2)
    )  # fmt: skip
    assert a[0].metrics == b[0].metrics and a[0].params == b[0].params


def test_ss_kmeans_assignment_fixes_the_labelled() -> None:
    """--assign ss-kmeans clusters labelled + pool with the labelled held; the params say so."""
    from embedlab.bench._gcd_train import cluster_pool

    data = make_blobs(n_samples=120, n_clusters=4, dim=8, seed=1)
    split = gcd_split(data, (1, 3), seed=0)
    out = cluster_pool(data.flat(), split, seed=0, assign="ss-kmeans")
    assert out["all_acc"] == out["old_acc"] == out["new_acc"] == 1.0  # separated blobs
    recs = run_gcd_bench(data, known="1,3", methods=["raw"], seeds=[0], assign="ss-kmeans")
    assert recs[0].status == "ok" and recs[0].params["assign"] == "ss-kmeans"
    assert recs[0].metrics["all_acc"] == 1.0
    with pytest.raises(ValueError, match="assign must be one of kmeans, ss-kmeans"):
        run_gcd_bench(data, known="1,3", methods=["raw"], assign="ss_kmeans")
