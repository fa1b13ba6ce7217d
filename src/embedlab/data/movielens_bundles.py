"""MovieLens co-rated sessions as bundles, with MiniLM item text features."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from embedlab._validation import check_bool, check_int
from embedlab.data._encode import check_path
from embedlab.data.bundles import BundleData, split_bundles
from embedlab.data.movielens import _read_ratings

__all__ = ["item_text", "load_movielens_bundles", "session_bundles"]

_DAY = 86400


def session_bundles(
    users: np.ndarray,
    items: np.ndarray,
    stamps: np.ndarray,
    *,
    min_size: int = 3,
    max_size: int = 20,
) -> list[np.ndarray]:
    """Bundles of raw item ids from ratings: one session per (user, UTC day).

    Rule: a user's ratings on one calendar day (UTC, ``timestamp // 86400``) form a
    session; the session is ordered by timestamp (ties keep file order) and cut into
    consecutive chunks of at most ``max_size`` distinct items; chunks with fewer than
    ``min_size`` items are dropped. Bundles come out ordered by (user, day, chunk).

    Example:
        >>> u = np.array([1, 1, 1, 2]); m = np.array([10, 11, 12, 10]); t = np.zeros(4, int)
        >>> [b.tolist() for b in session_bundles(u, m, t, min_size=2)]
        [[10, 11, 12]]
    """
    check_int("min_size", min_size, min_value=2)
    check_int("max_size", max_size, min_value=min_size)
    day = np.asarray(stamps, dtype=np.int64) // _DAY
    order = np.lexsort((np.asarray(stamps), day, np.asarray(users)))  # stable on ties
    u, d, m = np.asarray(users)[order], day[order], np.asarray(items)[order]
    starts = np.flatnonzero(np.r_[True, (u[1:] != u[:-1]) | (d[1:] != d[:-1])])
    ends = np.r_[starts[1:], len(u)]
    out: list[np.ndarray] = []
    for s, e in zip(starts, ends, strict=True):
        session = pd.unique(m[s:e])  # first occurrence order
        for c in range(0, len(session), max_size):
            chunk = session[c : c + max_size]
            if len(chunk) >= min_size:
                out.append(np.asarray(chunk, dtype=np.int64))
    return out


def item_text(directory: Path, movie_ids: np.ndarray, *, max_tags: int = 10) -> list[str]:
    """``"title | genres | tags"`` per movie id (tags: the ``max_tags`` most frequent,
    lower-cased; ``tags.csv`` is optional)."""
    movies = pd.read_csv(directory / "movies.csv", dtype={"title": str, "genres": str})
    title = dict(zip(movies["movieId"].astype(np.int64), movies["title"], strict=True))
    genres = dict(zip(movies["movieId"].astype(np.int64), movies["genres"], strict=True))
    tags: dict[int, Counter[str]] = defaultdict(Counter)
    tags_path = directory / "tags.csv"
    if tags_path.is_file():
        frame = pd.read_csv(tags_path, dtype={"tag": str})
        for mid, tag in zip(frame["movieId"].astype(np.int64), frame["tag"], strict=True):
            if isinstance(tag, str) and tag.strip():
                tags[int(mid)][tag.strip().lower()] += 1
    texts = []
    for mid in movie_ids.tolist():
        if mid not in title:
            raise ValueError(f"movies.csv has no row for movieId {mid} (rated in ratings.csv)")
        g = str(genres[mid]).replace("|", ", ")
        top = ", ".join(t for t, _ in tags[mid].most_common(max_tags))
        texts.append(f"{title[mid]} | {g} | {top}" if top else f"{title[mid]} | {g}")
    return texts


def load_movielens_bundles(
    path: str | Path,
    *,
    seed: int = 0,
    min_size: int = 3,
    max_size: int = 20,
    valid: float = 0.1,
    test: float = 0.1,
    progress: bool = False,
) -> BundleData:
    """MovieLens (``ratings.csv``, ``movies.csv``, optional ``tags.csv``) as bundle data.

    Bundles are co-rated sessions (see :func:`session_bundles` for the rule); items are the
    movies in any bundle, re-indexed ``0..n_items-1`` in ascending movieId. Item features
    are the packaged MiniLM embeddings (384-d, L2-normalised) of ``"title | genres | tags"``
    from :func:`embedlab.embed_texts`, cached under the embedlab cache folder. ``seed``
    splits the bundles (:func:`~embedlab.data.bundles.split_bundles`); on
    ml-latest-small with the defaults there are 6,304 bundles over 9,211 movies.

    Example:
        >>> d = load_movielens_bundles("../shared/data/ml-latest-small")  # doctest: +SKIP
    """
    from embedlab.text import embed_texts

    check_int("seed", seed, min_value=0)
    check_bool("progress", progress)
    directory = check_path(Path(path))
    if not directory.is_dir():
        raise ValueError(f"path must be a MovieLens directory, got a file: {directory}")
    users, movies, _, stamps, _ = _read_ratings(directory)
    raw = session_bundles(users, movies, stamps, min_size=min_size, max_size=max_size)
    if len(raw) < 3:
        raise ValueError(
            f"ratings must give at least 3 sessions of {min_size}..{max_size} movies, "
            f"got {len(raw)} in {directory}"
        )
    ids = np.unique(np.concatenate(raw))
    bundles = [np.searchsorted(ids, b) for b in raw]
    texts = item_text(directory, ids)
    feats = embed_texts(texts, progress=progress)
    train, va, te = split_bundles(bundles, seed=seed, valid=valid, test=test)
    names = [t.split(" | ")[0] for t in texts]
    return BundleData("movielens-bundles", feats, train, va, te, item_names=names)
