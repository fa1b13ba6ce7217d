"""Bundle data: seeded disjoint splits, halves, the session rule, specs and bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedlab import _embed
from embedlab.data.bundles import (
    BundleData,
    load_bundles,
    make_planted_bundles,
    split_bundles,
    split_halves,
)
from embedlab.data.movielens_bundles import load_movielens_bundles, session_bundles


def _bundles(n: int = 50) -> list[np.ndarray]:
    return [np.array([i, i + 1, i + 2]) for i in range(n)]


def test_split_is_deterministic_and_disjoint() -> None:
    bundles = _bundles()
    a = split_bundles(bundles, seed=4)
    b = split_bundles(bundles, seed=4)
    c = split_bundles(bundles, seed=5)
    assert all(
        [x.tolist() for x in p] == [y.tolist() for y in q] for p, q in zip(a, b, strict=True)
    )
    assert [x.tolist() for x in a[2]] != [x.tolist() for x in c[2]]
    keys = [{int(x[0]) for x in part} for part in a]
    assert sum(len(k) for k in keys) == 50 and len(set.union(*keys)) == 50
    assert (len(a[0]), len(a[1]), len(a[2])) == (40, 5, 5)


def test_halves_are_seeded_and_partition_each_bundle() -> None:
    bundles = [np.arange(5), np.arange(10, 12)]
    g1, r1 = split_halves(bundles, seed=1)
    g2, _ = split_halves(bundles, seed=1)
    assert [x.tolist() for x in g1] == [x.tolist() for x in g2]
    for b, g, r in zip(bundles, g1, r1, strict=True):
        assert sorted(g.tolist() + r.tolist()) == b.tolist() and len(g) == len(b) // 2


def test_session_rule() -> None:
    day = 86400
    users = np.array([1, 1, 1, 1, 1, 2, 2])
    items = np.array([5, 6, 7, 8, 9, 5, 6])
    stamps = np.array([0, 10, 5, day + 1, day + 2, 0, 1])
    # user 1 day 0: 5, 7, 6 (time order); day 1: two movies (dropped); user 2: two (dropped)
    assert [b.tolist() for b in session_bundles(users, items, stamps)] == [[5, 7, 6]]
    # chunks of at most max_size consecutive ratings
    out = session_bundles(np.zeros(7, int), np.arange(7), np.arange(7), min_size=2, max_size=3)
    assert [b.tolist() for b in out] == [[0, 1, 2], [3, 4, 5]]


def test_bad_input_names_the_parameter() -> None:
    feats = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match=r"train\[1\] must hold at least 2 items"):
        BundleData("x", feats, [[0, 1], [2]], [], [])
    with pytest.raises(ValueError, match="item_features must be a non-empty"):
        BundleData("x", np.zeros((0, 3), np.float32), [[0, 1]], [], [])
    with pytest.raises(ValueError, match="item_features must be a non-empty"):
        BundleData("x", np.zeros((4, 0), np.float32), [[0, 1]], [], [])
    with pytest.raises(ValueError, match=r"test\[0\] item ids must be in \[0, 4\)"):
        BundleData("x", feats, [[0, 1]], [], [[3, 4]])
    with pytest.raises(ValueError, match=r"valid\[0\] must not repeat an item"):
        BundleData("x", feats, [[0, 1]], [[2, 2]], [])
    with pytest.raises(ValueError, match="item_names must have one name per item"):
        BundleData("x", feats, [[0, 1]], [], [], item_names=["a"])
    with pytest.raises(ValueError, match=r"bundles\[0\] must hold at least 2 items"):
        split_halves([np.array([1])])
    with pytest.raises(ValueError, match="bundles must hold at least 3 bundles"):
        split_bundles(_bundles(2))
    with pytest.raises(ValueError, match="valid \\+ test must be < 1"):
        split_bundles(_bundles(), valid=0.5, test=0.5)
    with pytest.raises(ValueError, match="bundle_size must be <="):
        make_planted_bundles(n_items=10, n_groups=5, bundle_size=3)


def test_specs() -> None:
    d = load_bundles("synthetic-bundles(n_items=24, n_groups=4, n_bundles=30)", seed=1)
    assert d.n_items == 24 and len(d.train) + len(d.valid) + len(d.test) == 30
    with pytest.raises(ValueError, match="unknown bundle data source"):
        load_bundles("nope")
    with pytest.raises(ValueError, match="needs a path"):
        load_bundles("movielens-bundles")
    with pytest.raises(ValueError, match="takes no path"):
        load_bundles("synthetic-bundles:/tmp")


def test_movielens_bundles_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDLAB_CACHE", str(tmp_path / "cache"))
    seen: list[str] = []

    def fake_encode(texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
        seen.extend(texts)  # stands in for MiniLM (its load is slow): one unit row per text
        return np.eye(len(texts), 16, dtype=np.float32)

    monkeypatch.setattr(_embed, "_encode", fake_encode)
    (tmp_path / "movies.csv").write_text(
        "movieId,title,genres\n"
        + "".join(f"{i},Movie {i} (2000),Drama|Comedy\n" for i in range(1, 9))
    )
    rows = [(u, m, 100 * u + m) for u in (1, 2, 3, 4) for m in range(u, u + 4)]
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n" + "".join(f"{u},{m},4.0,{t}\n" for u, m, t in rows)
    )
    (tmp_path / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,2,Funny,5\n")
    d = load_movielens_bundles(tmp_path, seed=0, min_size=3, max_size=4)
    assert d.n_items == 7 and d.item_features.shape == (7, 16)
    assert "Movie 2 (2000) | Drama, Comedy | funny" in seen
    assert len(d.train) + len(d.valid) + len(d.test) == 4
    assert d.item_names[0] == "Movie 1 (2000)"


@pytest.mark.slow
def test_movielens_bundles_shared(require_shared: Callable[[str], Path]) -> None:
    d = load_movielens_bundles(require_shared("ml-latest-small"), seed=0)
    # measured: 9,211 items, 5,044 / 630 / 630 bundles
    assert d.n_items == 9211 and (len(d.valid), len(d.test)) == (630, 630)
