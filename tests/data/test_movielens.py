"""MovieLens loader: both layouts, labels, first genre, UTC hour and weekday, errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedlab.data import load_movielens

# UTC: 2000-07-30 18:45:03 (Sunday), 2001-01-01 00:00:00 (Monday), 2015-03-11 10:20 (Wednesday)
STAMPS = (964982703, 978307200, 1426069200)


def ml_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ml"
    d.mkdir()
    (d / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        f"7,10,4.0,{STAMPS[0]}\n"
        f"3,20,3.5,{STAMPS[1]}\n"
        f"7,30,5.0,{STAMPS[2]}\n"
        f"3,99,1.0,{STAMPS[0]}\n"
    )
    (d / "movies.csv").write_text(
        "movieId,title,genres\n"
        '10,"Toy Story (1995)",Animation|Comedy\n'
        "20,Heat (1995),Action\n"
        "30,Odd,(no genres listed)\n"
    )
    return d


def test_directory_layout(tmp_path: Path) -> None:
    ds = load_movielens(ml_dir(tmp_path))
    assert [f.name for f in ds.fields] == ["user", "movie", "genre", "hour", "weekday"]
    # users {3, 7}, movies {10, 20, 30, 99}, genres sorted:
    # (no genres listed), (unknown), Action, Animation
    assert [f.cardinality for f in ds.fields] == [2, 4, 4, 24, 7]
    np.testing.assert_array_equal(ds.labels, [1, 0, 1, 0])
    np.testing.assert_array_equal(ds.ids[:, 0], [1, 0, 1, 0])
    np.testing.assert_array_equal(ds.ids[:, 1], [0, 1, 2, 3])
    np.testing.assert_array_equal(ds.ids[:, 2], [3, 2, 0, 1])  # movie 99 is not in movies.csv
    for k, stamp in enumerate((STAMPS[0], STAMPS[1], STAMPS[2], STAMPS[0])):
        ref = dt.datetime.fromtimestamp(stamp, tz=dt.timezone.utc)
        assert (ds.ids[k, 3], ds.ids[k, 4]) == (ref.hour, ref.weekday())


def test_joined_layout_matches_directory(tmp_path: Path) -> None:
    joined = tmp_path / "joined.csv"
    joined.write_text(
        "user_id,movie_id,rating,timestamp,title,genres,gender\n"
        f"7,10,4,{STAMPS[0]},a,Animation|Comedy,F\n"
        f"3,20,3,{STAMPS[1]},b,Action,M\n"
        f"7,30,5,{STAMPS[2]},c,(no genres listed),F\n"
    )
    ds = load_movielens(joined, name="ml1m")
    assert ds.name == "ml1m"
    assert [f.cardinality for f in ds.fields] == [2, 3, 3, 24, 7]
    np.testing.assert_array_equal(ds.labels, [1, 0, 1])
    np.testing.assert_array_equal(ds.ids[:, 2], [2, 1, 0])
    np.testing.assert_array_equal(ds.ids[:, 4], [6, 0, 2])  # Sunday, Monday, Wednesday


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data path does not exist"):
        load_movielens(tmp_path / "nope")
    d = tmp_path / "only_ratings"
    d.mkdir()
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4,0\n")
    with pytest.raises(
        ValueError, match=r"must hold ratings.csv and movies.csv, missing movies.csv"
    ):
        load_movielens(d)
    cols = tmp_path / "cols.csv"
    cols.write_text("user_id,movie_id,rating\n1,2,3\n")
    with pytest.raises(ValueError, match=r"must have columns .*; missing timestamp, genres"):
        load_movielens(cols)
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,movie_id,rating,timestamp,genres\n1,2,4,5,A\n1,2,four,5,A\n")
    with pytest.raises(ValueError, match=r"bad\.csv line 3: rating must be a number, got 'four'"):
        load_movielens(bad)
    frac = tmp_path / "frac.csv"
    frac.write_text("user_id,movie_id,rating,timestamp,genres\n1.5,2,4,5,A\n")
    with pytest.raises(
        ValueError, match=r"frac\.csv line 2: user_id must be an integer, got '1.5'"
    ):
        load_movielens(frac)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"must not be empty, got an empty file"):
        load_movielens(empty)
    header_only = tmp_path / "h.csv"
    header_only.write_text("user_id,movie_id,rating,timestamp,genres\n")
    with pytest.raises(ValueError, match=r"must hold at least one data row, got none"):
        load_movielens(header_only)


def test_ml_latest_small(require_shared: Callable[[str], Path]) -> None:
    ds = load_movielens(require_shared("ml-latest-small"))
    assert len(ds) == 100_836
    # 9,724 of the 9,742 movies have ratings; 18 first genres and "(no genres listed)"
    assert [f.cardinality for f in ds.fields] == [610, 9724, 19, 24, 7]
    assert ds.positive_rate == pytest.approx(0.4818, abs=1e-3)  # measured 0.48177


def test_joined_sample(require_shared: Callable[[str], Path]) -> None:
    ds = load_movielens(require_shared("samples/movielens_sample.txt"))
    assert ds.ids.shape == (200, 5)
    assert set(np.unique(ds.labels).tolist()) == {0.0, 1.0}
