"""MovieLens ratings as click data: a rating of 4 or more is a click.

Two layouts are read:

- a directory in the ``ml-latest`` / ``ml-latest-small`` layout, with
  ``ratings.csv`` (``userId,movieId,rating,timestamp``) and ``movies.csv``
  (``movieId,title,genres``);
- one CSV with ratings already joined to movies (and users), with columns
  ``user_id, movie_id, rating, timestamp, genres`` (the joined ML-1M layout).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from embedlab.data._dataset import CTRDataset
from embedlab.data._encode import PathLike, at, check_path
from embedlab.data._textio import iter_csv_chunks, read_header
from embedlab.fields import Field

__all__ = ["MAX_RATING", "MIN_RATING", "MOVIELENS_FIELDS", "load_movielens"]

MOVIELENS_FIELDS: tuple[str, ...] = ("user", "movie", "genre", "hour", "weekday")
#: the rating scale of every MovieLens release (ML-100K/1M: 1..5, ml-latest: 0.5..5)
MIN_RATING, MAX_RATING = 0.5, 5.0
_JOINED = ("user_id", "movie_id", "rating", "timestamp", "genres")
_RATINGS = ("userId", "movieId", "rating", "timestamp")
_MOVIES = ("movieId", "genres")
_UNKNOWN_GENRE = "(unknown)"
# 1970-01-01 was a Thursday: weekday 3 when Monday is 0
_EPOCH_WEEKDAY = 3
# integers above this, written as floats ("1e30"), are no longer exact in float64
_EXACT_FLOAT = 2**53
_PLAIN_INT = re.compile(r"[+-]?[0-9]{1,19}")
_INT64 = np.iinfo(np.int64)
_CHUNK_LINES = 1_000_000


def _chunks(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """``(columns of a chunk as text, 1-based line of each row)`` of a CSV with a header.

    Quoted cells are honoured (``"Toy Story, The (1995)"`` is one title); every
    row must have as many cells as the header.
    """
    _, header = read_header(path, delimiter=",", quoting=True)
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise ValueError(
            f"{at(path, 1)}: column names must be unique, got {', '.join(repeated)} twice"
        )
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(
            f"{path} must have columns {', '.join(columns)}; missing {', '.join(missing)} "
            f"(got {', '.join(header)})"
        )
    empty = True
    for chunk, linenos in iter_csv_chunks(
        path,
        header,
        delimiter=",",
        has_header=True,
        chunksize=_CHUNK_LINES,
        max_rows=None,
        quoting=True,
    ):
        empty = False
        yield chunk[list(columns)], linenos
    if empty:
        raise ValueError(f"movielens file must hold at least one data row, got none: {path}")


def _integers(path: Path, cells: pd.Series, column: str, linenos: np.ndarray) -> np.ndarray:
    """``(n,)`` int64 of integer cells; a value int64 cannot hold exactly raises with its line.

    ``"7"``, ``"7.0"`` and ``"7e3"`` are integers; ``"1e30"`` is refused (from
    2**53 on a float is no longer exact, so ``1e30`` and ``1e30 + 1`` would be one
    id); ``"9007199254740993"`` (plain digits) is read exactly.
    """
    numbers = pd.to_numeric(cells, errors="coerce")
    if numbers.dtype == np.int64:
        return np.asarray(numbers.to_numpy(), dtype=np.int64)
    values = np.asarray(numbers.to_numpy(dtype=np.float64, na_value=np.nan), np.float64)
    out = np.zeros(len(values), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        bad = np.isnan(values) | (values != np.floor(values))  # not an integer at all
        safe = ~bad & (np.abs(values) < _EXACT_FLOAT)
    out[safe] = values[safe]
    huge = np.zeros(len(values), dtype=bool)
    for row in np.flatnonzero(~bad & ~safe).tolist():  # rare: exact only as plain digits
        text = str(cells.iloc[row]).strip()
        if _PLAIN_INT.fullmatch(text) and _INT64.min <= int(text) <= _INT64.max:
            out[row] = int(text)
        else:
            huge[row] = True
    if bad.any() or huge.any():
        row = int(np.flatnonzero(bad | huge)[0])
        rule = (
            "an integer"
            if bad[row]
            else "an integer that int64 holds exactly (plain digits, or below 2**53 in magnitude)"
        )
        raise ValueError(
            f"{at(path, int(linenos[row]))}: {column} must be {rule}, got {cells.iloc[row]!r}"
        )
    return out


def _ratings(path: Path, cells: pd.Series, column: str, linenos: np.ndarray) -> np.ndarray:
    """``(n,)`` float64 ratings in ``[MIN_RATING, MAX_RATING]``; others raise with their line."""
    numbers = pd.to_numeric(cells, errors="coerce")
    values = np.asarray(numbers.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~((values >= MIN_RATING) & (values <= MAX_RATING))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        where = at(path, int(linenos[row]))
        if np.isnan(values[row]):
            raise ValueError(f"{where}: {column} must be a number, got {cells.iloc[row]!r}")
        raise ValueError(
            f"{where}: {column} must be in [{MIN_RATING:g}, {MAX_RATING:g}], "
            f"got {float(values[row])}"
        )
    return values


def _first_genre(genres: pd.Series) -> np.ndarray:
    first = genres.astype(str).str.split("|", n=1).str[0].str.strip()
    return np.asarray(first.where(first != "", _UNKNOWN_GENRE).to_numpy(dtype=object))


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
        names: tuple[str, ...] = _RATINGS
        path = ratings_path
    else:
        names, path = _JOINED, p
    user, movie, rating_col, stamp_col = names[:4]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("u", "m", "r", "t", "g")}
    for chunk, lines in _chunks(path, names):
        parts["u"].append(_integers(path, chunk[user], user, lines))
        parts["m"].append(_integers(path, chunk[movie], movie, lines))
        parts["r"].append(_ratings(path, chunk[rating_col], rating_col, lines))
        parts["t"].append(_integers(path, chunk[stamp_col], stamp_col, lines))
        if not p.is_dir():
            parts["g"].append(_first_genre(chunk["genres"]))
    users, items, rating, stamp = (np.concatenate(parts[k]) for k in ("u", "m", "r", "t"))
    if p.is_dir():
        ids: list[np.ndarray] = []
        firsts: list[np.ndarray] = []
        for chunk, lines in _chunks(movies_path, _MOVIES):
            ids.append(_integers(movies_path, chunk["movieId"], "movieId", lines))
            firsts.append(_first_genre(chunk["genres"]))
        genre_of = pd.Series(np.concatenate(firsts), index=np.concatenate(ids))
        genre_of = genre_of[~genre_of.index.duplicated()]  # the first line of a movie wins
        genre = pd.Series(items).map(genre_of).fillna(_UNKNOWN_GENRE)
    else:
        genre = pd.Series(np.concatenate(parts["g"]), dtype=object)
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
