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
    with pytest.raises(
        ValueError, match=r"empty\.csv must hold at least one row, got an empty file"
    ):
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


# --- bad input: every error names the file, the line, the rule and the value ---------------

RATINGS_HEADER = "userId,movieId,rating,timestamp\n"


def ml_files(
    tmp_path: Path, ratings: str, movies: str = "movieId,title,genres\n1,A,Drama\n"
) -> Path:
    d = tmp_path / "ml"
    d.mkdir(parents=True)
    (d / "ratings.csv").write_bytes(ratings.encode() if isinstance(ratings, str) else ratings)
    (d / "movies.csv").write_text(movies)
    return d


def test_quoted_title_with_comma_keeps_its_genre(tmp_path: Path) -> None:
    # regression: the genre column must not shift when a quoted title holds a comma
    movies = 'movieId,title,genres\n1,"Toy Story, The (1995)",Comedy\n2,Heat,Action\n'
    d = ml_files(tmp_path, RATINGS_HEADER + "5,1,4,0\n5,2,3,0\n", movies)
    ds = load_movielens(d)
    assert ds.fields[2].cardinality == 2
    np.testing.assert_array_equal(ds.ids[:, 2], [1, 0])  # Comedy, Action (sorted: Action=0)
    joined = tmp_path / "j.csv"
    joined.write_text(
        "user_id,movie_id,rating,timestamp,title,genres\n"
        '1,1,4,0,"Toy Story, The (1995)",Comedy|Drama\n'
        "1,2,4,0,Heat,Action\n"
    )
    np.testing.assert_array_equal(load_movielens(joined).ids[:, 2], [1, 0])


def test_unquoted_comma_is_a_column_count_error(tmp_path: Path) -> None:
    movies = "movieId,title,genres\n2,Heat,Action\n1,Toy Story, The (1995),Comedy\n"
    d = ml_files(tmp_path, RATINGS_HEADER + "5,1,4,0\n", movies)
    with pytest.raises(ValueError, match=r"movies\.csv line 3: expected 3 columns, got 4"):
        load_movielens(d)
    d2 = ml_files(tmp_path / "b", RATINGS_HEADER + "5,1,4,0\n5,1,4\n")
    with pytest.raises(ValueError, match=r"ratings\.csv line 3: expected 4 columns, got 3"):
        load_movielens(d2)


@pytest.mark.parametrize(
    ("cell", "rule"),
    [
        ("1e30", "an integer that int64 holds exactly"),
        ("9223372036854775808", "an integer that int64 holds exactly"),
        ("99999999999999999999", "an integer that int64 holds exactly"),
        ("1.5", "an integer"),
        ("abc", "an integer"),
        ("inf", "an integer that int64 holds exactly"),
    ],
)
def test_user_ids_that_int64_cannot_hold_exactly(tmp_path: Path, cell: str, rule: str) -> None:
    # regression: 1e30 and 2e30 used to be read as floats and merged into one user
    d = ml_files(tmp_path, RATINGS_HEADER + f"3,1,4,0\n{cell},1,4,0\n")
    with pytest.raises(ValueError, match=rf"ratings\.csv line 3: userId must be {rule}.*'{cell}'"):
        load_movielens(d)


def test_big_integer_ids_stay_distinct(tmp_path: Path) -> None:
    big = 2**53
    d = ml_files(tmp_path, RATINGS_HEADER + f"{big},1,4,0\n{big + 1},1,4,0\n7e3,1,4,0\n")
    ds = load_movielens(d)
    assert ds.fields[0].cardinality == 3
    np.testing.assert_array_equal(ds.ids[:, 0], [1, 2, 0])  # 7000 < 2**53 < 2**53 + 1


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("7", r"rating must be in \[0\.5, 5\], got 7\.0"),
        ("-1", r"rating must be in \[0\.5, 5\], got -1\.0"),
        ("0", r"rating must be in \[0\.5, 5\], got 0\.0"),
        ("inf", r"rating must be in \[0\.5, 5\], got inf"),
        ("nan", r"rating must be a number, got 'nan'"),
        ("", r"rating must be a number, got ''"),
    ],
)
def test_out_of_range_ratings(tmp_path: Path, cell: str, message: str) -> None:
    d = ml_files(tmp_path, RATINGS_HEADER + "1,1,4,0\n1,1,0.5,0\n\n" + f"2,1,{cell},0\n")
    with pytest.raises(ValueError, match=rf"ratings\.csv line 5: {message}"):
        load_movielens(d)


def test_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    d = ml_files(tmp_path, RATINGS_HEADER.encode() + b"1,1,4,0\n1,1,4,0\xff\n")
    with pytest.raises(ValueError, match=r"ratings\.csv line 3: not valid UTF-8 text \(byte 0xff"):
        load_movielens(d)
    movies = tmp_path / "m.csv"
    movies.write_bytes(b'user_id,movie_id,rating,timestamp,genres\n1,1,4,0,"Com\xe9dy"\n')
    with pytest.raises(ValueError, match=r"m\.csv line 2: not valid UTF-8 text \(byte 0xe9"):
        load_movielens(movies)


def test_movies_csv_ids_and_quotes_are_checked(tmp_path: Path) -> None:
    d = ml_files(tmp_path, RATINGS_HEADER + "1,1,4,0\n", "movieId,title,genres\n1x,A,Drama\n")
    with pytest.raises(
        ValueError, match=r"movies\.csv line 2: movieId must be an integer, got '1x'"
    ):
        load_movielens(d)
    d2 = ml_files(
        tmp_path / "b", RATINGS_HEADER + "1,1,4,0\n", 'movieId,title,genres\n1,"A,Drama\n'
    )
    with pytest.raises(ValueError, match=r"movies\.csv line 2: cannot read as CSV"):
        load_movielens(d2)


def test_repeated_header_and_bom_and_crlf(tmp_path: Path) -> None:
    rep = tmp_path / "rep.csv"
    rep.write_text("user_id,movie_id,rating,timestamp,genres,genres\n1,1,4,0,A,B\n")
    with pytest.raises(
        ValueError, match=r"rep\.csv line 1: column names must be unique, got genres"
    ):
        load_movielens(rep)
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(b"\xef\xbb\xbfuser_id,movie_id,rating,timestamp,genres\r\n1,1,4,0,A|B\r\n")
    ds = load_movielens(crlf)
    assert len(ds) == 1 and ds.fields[2].cardinality == 1
