"""MovieLens ratings as click data: a rating of 4 or more is a click.

Two layouts are read:

- a directory in the ``ml-latest`` / ``ml-latest-small`` layout, with
  ``ratings.csv`` (``userId,movieId,rating,timestamp``) and ``movies.csv``
  (``movieId,title,genres``);
- one CSV with ratings already joined to movies (and users), with columns
  ``user_id, movie_id, rating, timestamp, genres`` (the joined ML-1M layout).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from embedlab.data._dataset import CTRDataset
from embedlab.data._encode import PathLike, check_path
from embedlab.tables._field import Field

__all__ = ["MOVIELENS_FIELDS", "load_movielens"]

MOVIELENS_FIELDS: tuple[str, ...] = ("user", "movie", "genre", "hour", "weekday")
_JOINED = ("user_id", "movie_id", "rating", "timestamp", "genres")
_RATINGS = ("userId", "movieId", "rating", "timestamp")
_MOVIES = ("movieId", "genres")
_UNKNOWN_GENRE = "(unknown)"
# 1970-01-01 was a Thursday: weekday 3 when Monday is 0
_EPOCH_WEEKDAY = 3


def _read_columns(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read ``columns`` of a CSV with a header as strings; the error lists missing columns."""
    try:
        header = pd.read_csv(path, nrows=0).columns.tolist()
    except pd.errors.EmptyDataError:
        raise ValueError(f"movielens file must not be empty, got an empty file: {path}") from None
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(
            f"{path} must have columns {', '.join(columns)}; missing {', '.join(missing)} "
            f"(got {', '.join(map(str, header))})"
        )
    frame = pd.read_csv(path, usecols=list(columns), dtype=str, na_filter=False)
    if len(frame) == 0:
        raise ValueError(f"movielens file must hold at least one data row, got none: {path}")
    return frame


def _numbers(frame: pd.DataFrame, column: str, path: Path, *, integer: bool) -> np.ndarray:
    """Column as float64 / int64; a cell that is not a number raises with its line."""
    numbers = pd.to_numeric(frame[column], errors="coerce")
    values = np.asarray(numbers.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    bad = ~np.isfinite(values)
    if integer:
        bad |= np.isfinite(values) & (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        kind = "an integer" if integer else "a number"
        raise ValueError(
            f"{path} line {row + 2}: {column} must be {kind}, got {frame[column].iloc[row]!r}"
        )
    return values.astype(np.int64) if integer else values


def _first_genre(genres: pd.Series) -> pd.Series:
    first = genres.str.split("|", n=1).str[0].str.strip()
    return first.where(first != "", _UNKNOWN_GENRE)


def _read_ratings(
    p: Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, pd.Series]:
    """Users, movies, ratings, timestamps (numpy, file order) and first genres of either layout."""
    if p.is_dir():
        ratings_path, movies_path = p / "ratings.csv", p / "movies.csv"
        for f in (ratings_path, movies_path):
            if not f.is_file():
                raise ValueError(
                    f"a movielens directory must hold ratings.csv and movies.csv, "
                    f"missing {f.name} in {p}"
                )
        ratings = _read_columns(ratings_path, _RATINGS)
        movies = _read_columns(movies_path, _MOVIES).drop_duplicates("movieId")
        genre_of = pd.Series(_first_genre(movies["genres"]).to_numpy(), index=movies["movieId"])
        users = _numbers(ratings, "userId", ratings_path, integer=True)
        items = _numbers(ratings, "movieId", ratings_path, integer=True)
        rating = _numbers(ratings, "rating", ratings_path, integer=False)
        stamp = _numbers(ratings, "timestamp", ratings_path, integer=True)
        genre = ratings["movieId"].map(genre_of).fillna(_UNKNOWN_GENRE)
    else:
        joined = _read_columns(p, _JOINED)
        users = _numbers(joined, "user_id", p, integer=True)
        items = _numbers(joined, "movie_id", p, integer=True)
        rating = _numbers(joined, "rating", p, integer=False)
        stamp = _numbers(joined, "timestamp", p, integer=True)
        genre = _first_genre(joined["genres"])
    return users, items, rating, stamp, genre


def load_movielens(path: PathLike, *, name: str = "movielens") -> CTRDataset:
    """Read MovieLens ratings as a click dataset with fields user, movie, genre, hour, weekday.

    Label is ``rating >= 4``. ``genre`` is the first genre of the movie's
    pipe-separated list (``"(no genres listed)"`` is a value of its own; a
    movie missing from ``movies.csv`` gets ``"(unknown)"``); ``hour`` (0-23)
    and ``weekday`` (0 = Monday) are read from the UTC timestamp. User, movie
    and genre ids are remapped to ``0..n-1`` in order of their original value;
    hour and weekday keep their value as id (cardinality 24 and 7).

    Args:
        path: a directory with ``ratings.csv`` and ``movies.csv``, or one
            joined CSV with ``user_id, movie_id, rating, timestamp, genres``.
        name: ``name`` of the dataset.

    Returns:
        :class:`CTRDataset` with ``ids`` ``(n_ratings, 5)`` int64.

    Example:
        >>> ds = load_movielens("ml-latest-small")  # doctest: +SKIP
        >>> [(f.name, f.cardinality) for f in ds.fields][:2]  # doctest: +SKIP
        [('user', 610), ('movie', 9724)]
    """
    users, items, rating, stamp, genre = _read_ratings(check_path(path))
    user_ids, user_vocab = pd.factorize(users, sort=True)
    movie_ids, movie_vocab = pd.factorize(items, sort=True)
    genre_ids, genre_vocab = pd.factorize(genre.to_numpy(dtype=object), sort=True)
    hour = (stamp // 3600) % 24
    weekday = (stamp // 86400 + _EPOCH_WEEKDAY) % 7
    ids = np.stack([user_ids, movie_ids, genre_ids, hour, weekday], axis=1).astype(np.int64)
    cards = (len(user_vocab), len(movie_vocab), len(genre_vocab), 24, 7)
    fields = tuple(Field(f, c) for f, c in zip(MOVIELENS_FIELDS, cards, strict=True))
    labels = (rating >= 4.0).astype(np.float32)
    return CTRDataset(ids=ids, labels=labels, fields=fields, name=name)
