"""Behaviour-sequence CTR data: each impression carries the user's previous items (for DIN).

- :func:`load_movielens_sequences`: MovieLens ratings in time order, one row per
  rating, with the user's previously rated movies as its history;
- :func:`make_sequence_ctr`: a synthetic log of the same structure whose clicks
  depend on how similar the candidate is to the items in the history;
- :func:`behaviour_histories` and :func:`temporal_split`, the two pieces both use.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from embedlab._validation import check_bool, check_int, check_positive_float
from embedlab.data._dataset import CTRDataset, CTRSplits
from embedlab.data._encode import PathLike, check_path
from embedlab.data.movielens import _read_ratings
from embedlab.fields import Field

__all__ = [
    "SEQUENCE_FIELDS",
    "behaviour_histories",
    "load_movielens_sequences",
    "make_sequence_ctr",
    "temporal_split",
]

#: fields of :func:`load_movielens_sequences`; the history holds ids of ``movie``
SEQUENCE_FIELDS: tuple[str, ...] = ("user", "movie", "genre")


def behaviour_histories(groups: np.ndarray, items: np.ndarray, max_len: int) -> np.ndarray:
    """The previous ``max_len`` items of the same group before each row, oldest first.

    Rows of one group must be in time order (groups may interleave). A row's
    history is the items of the rows of its group that come before it; when
    there are more than ``max_len`` of them the most recent ``max_len`` are kept
    (older ones are dropped). Histories are right-padded with ``-1``; the first
    row of each group has an empty history (all ``-1``).

    Args:
        groups: ``(n,)`` integer group (user) of each row.
        items: ``(n,)`` int64 item id of each row.
        max_len: history length, >= 1.

    Returns:
        ``(n, max_len)`` int64.

    Example:
        >>> behaviour_histories(np.array([0, 0, 0, 1]), np.array([5, 6, 7, 8]), 2)
        array([[-1, -1],
               [ 5, -1],
               [ 5,  6],
               [-1, -1]])
    """
    max_len = check_int("max_len", max_len, min_value=1)
    groups, items = np.asarray(groups), np.asarray(items, dtype=np.int64)
    if groups.ndim != 1 or items.shape != groups.shape:
        raise ValueError(
            f"groups and items must be 1-d arrays of one length, got {groups.shape} and "
            f"{items.shape}"
        )
    n = groups.size
    order = np.argsort(groups, kind="stable")  # grouped, time order kept inside a group
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if n else np.zeros(0, np.int64)
    first = np.repeat(starts, np.diff(np.r_[starts, n]))  # (n,) first sorted row of the group
    pos = np.arange(n) - first  # rows of the group before this one
    count = np.minimum(pos, max_len)  # (n,) items kept
    j = np.arange(max_len)
    src = np.arange(n)[:, None] - count[:, None] + j[None, :]  # (n, max_len) sorted rows
    keep = j[None, :] < count[:, None]
    hist_sorted = np.where(keep, items[order][np.clip(src, 0, max(n - 1, 0))], -1)
    out = np.empty((n, max_len), dtype=np.int64)
    out[order] = hist_sorted
    return out


def _check_fractions(valid_fraction: float, test_fraction: float) -> tuple[float, float]:
    v = check_positive_float("valid_fraction", valid_fraction)
    t = check_positive_float("test_fraction", test_fraction)
    if v + t >= 1.0:
        raise ValueError(
            f"valid_fraction + test_fraction must be < 1, got {v:g} + {t:g} = {v + t:g}"
        )
    return v, t


def temporal_split(
    data: CTRDataset, *, valid_fraction: float = 0.1, test_fraction: float = 0.1
) -> CTRSplits:
    """Split each group in time: its last rows go to test, the block before them to valid.

    A group of ``n_g`` rows (in time order in ``data``) gives its last
    ``ceil(test_fraction * n_g)`` rows to test, the ``ceil(valid_fraction * n_g)``
    before those to valid and the rest to train, so every test row of a user is
    later than the user's valid rows, which are later than the user's train rows,
    and histories never reach into a later split. The cut is per group, not at one
    global time: a train row of one user may be later than a test row of another
    (the leave-last-out protocol of sequential recommendation). Groups with very
    few rows may have no train rows (with the default fractions, groups of fewer
    than three rows).

    Args:
        data: a dataset with ``groups``, rows of each group in time order.
        valid_fraction: share of each group's rows for valid, > 0.
        test_fraction: share of each group's rows for test, > 0.

    Raises:
        ValueError: ``data`` has no groups, the fractions are not positive or sum
            to 1 or more, or a split would be empty.
    """
    if data.groups is None:
        raise ValueError("data must have groups (e.g. the user) to split in time, got none")
    v, t = _check_fractions(valid_fraction, test_fraction)
    groups = data.groups
    n = len(data)
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, n])
    size = np.repeat(sizes, sizes)  # (n,) size of each sorted row's group
    from_end = np.repeat(starts + sizes, sizes) - 1 - np.arange(n)  # 0 for a group's last row
    n_test = np.ceil(t * size - 1e-9)
    n_valid = np.ceil(v * size - 1e-9)
    role = np.where(from_end < n_test, 2, np.where(from_end < n_test + n_valid, 1, 0))
    role_of_row = np.empty(n, dtype=np.int64)
    role_of_row[order] = role
    parts = []
    for k, part in enumerate(("train", "valid", "test")):
        index = np.flatnonzero(role_of_row == k)
        if index.size == 0:
            raise ValueError(
                f"temporal split of {data.name!r} leaves {part} empty: "
                f"{len(sizes)} groups of at most {int(sizes.max())} rows"
            )
        parts.append(data.subset(index))
    return CTRSplits(train=parts[0], valid=parts[1], test=parts[2])


def load_movielens_sequences(
    path: PathLike,
    max_len: int = 20,
    *,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    name: str = "movielens-seq",
    history_genre: bool = True,
) -> CTRSplits:
    """MovieLens ratings as sequence CTR data: fields user, movie, genre and the previous movies.

    Ratings are sorted by (user, timestamp); ratings with the same timestamp keep
    their file order. Each rating is one row with label ``rating >= 4`` and
    ``history`` = the movies the user rated before it (whatever the rating),
    oldest first: the most recent ``max_len`` when there are more (older ones
    are dropped), right-padded with ``-1``, empty for the user's first rating.
    ``groups`` is the user (for gAUC); ``history_field`` is the movie column.
    ``genre`` is the movie's first genre (as in :func:`load_movielens`).
    With ``history_genre`` (the default) each history item carries its genre too,
    as DIN's goods carry their category: ``history`` is ``(n, max_len, 2)``,
    channel 0 the movie, channel 1 its first genre (``history_side_fields=(2,)``,
    pads at the same places); ``history_genre=False`` gives the movie ids only,
    ``(n, max_len)``. Ids are
    remapped to ``0..n-1`` in order of their original value, over all ratings
    (a movie rated only in test gets an id whose row is never trained).

    The split is per user in time (:func:`temporal_split`): each user's last
    ``test_fraction`` of ratings is test, the block before it valid.

    Args:
        path: a directory with ``ratings.csv`` and ``movies.csv``, or one joined
            CSV with ``user_id, movie_id, rating, timestamp, genres``.
        max_len: history length.
        valid_fraction: share of each user's ratings for valid.
        test_fraction: share of each user's ratings for test.
        name: ``name`` of the splits.
        history_genre: give every history item its genre as a second channel.

    Raises:
        DataPathError: ``path`` does not exist.
        ValueError: a missing file or column, a bad cell (see
            :func:`~embedlab.data.load_movielens`), bad fractions or ``max_len``, or too
            few ratings per user for the split (the message names the path).

    Example:
        >>> splits = load_movielens_sequences("ml-latest-small")  # doctest: +SKIP
        >>> splits.train.history.shape, splits.train.history_side_fields  # doctest: +SKIP
        ((80668, 20, 2), (2,))
    """
    max_len = check_int("max_len", max_len, min_value=1)
    _check_fractions(valid_fraction, test_fraction)
    history_genre = check_bool("history_genre", history_genre)
    p = check_path(path)
    users, items, rating, stamp, genre = _read_ratings(p)
    order = np.lexsort((stamp, users))  # stable: equal (user, time) keep file order
    user_ids, user_vocab = pd.factorize(users, sort=True)
    movie_ids, movie_vocab = pd.factorize(items, sort=True)
    genre_ids, genre_vocab = pd.factorize(genre.to_numpy(dtype=object), sort=True)
    ids = np.stack([user_ids, movie_ids, genre_ids], axis=1).astype(np.int64)[order]
    cards = (len(user_vocab), len(movie_vocab), len(genre_vocab))
    fields = tuple(Field(f, c) for f, c in zip(SEQUENCE_FIELDS, cards, strict=True))
    history = behaviour_histories(ids[:, 0], ids[:, 1], max_len)
    if history_genre:  # the genres of the same rows: aligned with the movies, same pads
        genres = behaviour_histories(ids[:, 0], ids[:, 2], max_len)
        history = np.stack([history, genres], axis=-1)
    data = CTRDataset(
        ids=ids,
        labels=(rating[order] >= 4.0).astype(np.float32),
        fields=fields,
        name=name,
        history=history,
        history_field=1,
        groups=ids[:, 0],
        history_side_fields=(2,) if history_genre else (),
    )
    try:
        return temporal_split(data, valid_fraction=valid_fraction, test_fraction=test_fraction)
    except ValueError as exc:  # too few ratings per user: say which data
        raise ValueError(f"{p}: {exc}") from None


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True))


def make_sequence_ctr(
    n_users: int = 3000,
    n_items: int = 300,
    *,
    n_topics: int = 10,
    events_per_user: int = 25,
    session_length: int = 8,
    interests_per_session: int = 2,
    max_len: int = 20,
    similarity_scale: float = 5.0,
    positive_rate: float = 0.4,
    seed: int = 0,
) -> CTRDataset:
    """A synthetic behaviour log whose clicks depend on the candidate's similarity to the history.

    Items have unit latent vectors around ``n_topics`` topic centres (16-d; two
    items of one topic have cosine about 0.8, of two topics about 0 +- 0.25).
    Each user has a sequence of about ``events_per_user`` items (between half
    and 1.5 times that) in sessions of ``session_length`` events; each session
    has ``interests_per_session`` topics of its own, drawn afresh, so the user id
    says nothing about the current interests. An event's item comes from one of
    the session's topics with probability 0.8, else from any topic, popular
    items more often (Zipf within the topic). Every event is an impression of
    its item with history = the user's previous ``max_len`` items, and

        ``logit = similarity_scale * max_k cos(v_item, v_k) + b_item + b_user + b0``

    over the history items ``k`` (0 for an empty history), ``b0`` set for about
    ``positive_rate`` clicks. The click depends on the *closest* past item; the
    history also holds items of earlier sessions, so mean pooling dilutes the
    signal and attending to the relevant items should help. With the defaults
    (about 75,000 rows) the oracle's test AUC is about 0.76. Rows are ordered by
    (user, time), as :func:`temporal_split` expects.

    Args:
        n_users: number of users (``groups``).
        n_items: number of items.
        n_topics: number of topics (also a field, the item's category).
        events_per_user: mean number of impressions per user.
        session_length: events per session.
        interests_per_session: topics each session mostly draws from.
        max_len: history length.
        similarity_scale: weight of the similarity in the logit.
        positive_rate: approximate fraction of clicks.
        seed: seeds everything.

    Returns:
        :class:`CTRDataset` with fields user, item, topic, ``history`` over ``item``,
        ``groups`` = user and ``oracle`` = the true click probabilities.

    Example:
        >>> ds = make_sequence_ctr(50, 40, n_topics=4, seed=0)
        >>> [f.name for f in ds.fields], ds.history.shape[1], ds.history_field
        (['user', 'item', 'topic'], 20, 1)
    """
    n_users = check_int("n_users", n_users, min_value=1)
    n_items = check_int("n_items", n_items, min_value=1)
    n_topics = check_int("n_topics", n_topics, min_value=1)
    events = check_int("events_per_user", events_per_user, min_value=2)
    session = check_int("session_length", session_length, min_value=1)
    n_interests = check_int("interests_per_session", interests_per_session, min_value=1)
    max_len = check_int("max_len", max_len, min_value=1)
    if n_interests > n_topics:
        raise ValueError(
            f"interests_per_session must be <= n_topics ({n_topics}), got {interests_per_session}"
        )
    scale = check_positive_float("similarity_scale", similarity_scale, strict=False)
    if not 0.0 < positive_rate < 1.0:
        raise ValueError(f"positive_rate must be in (0, 1), got {positive_rate}")
    rng = np.random.default_rng(seed)
    factor_dim = 16

    topic_of = rng.integers(n_topics, size=n_items)
    centres = _unit_rows(rng.normal(size=(n_topics, factor_dim)))
    noise = rng.normal(size=(n_items, factor_dim)) * (0.5 / math.sqrt(factor_dim))
    vec = _unit_rows(centres[topic_of] + noise)  # (n_items, factor_dim)
    popularity = rng.permutation(n_items) + 1.0  # Zipf rank of each item
    weight = popularity**-1.0

    # items sorted by topic; cumulative popularity to draw within a topic
    by_topic = np.argsort(topic_of, kind="stable")
    cum = np.cumsum(weight[by_topic])
    topic_end = np.searchsorted(topic_of[by_topic], np.arange(n_topics), side="right")
    topic_start = np.r_[0, topic_end[:-1]]
    cum_before = np.where(topic_start > 0, cum[np.maximum(topic_start - 1, 0)], 0.0)
    topic_mass = np.where(topic_end > topic_start, cum[np.maximum(topic_end - 1, 0)], 0.0)
    topic_mass = topic_mass - cum_before

    counts = rng.integers(max(2, events // 2), events + events // 2 + 1, size=n_users)
    users = np.repeat(np.arange(n_users), counts)  # (n,) in (user, time) order
    n = users.size
    position = np.arange(n) - np.repeat(np.r_[0, np.cumsum(counts)[:-1]], counts)
    session_of = np.cumsum(position % session == 0) - 1  # (n,) session index
    n_sessions = int(session_of[-1]) + 1
    interests = np.argsort(rng.random((n_sessions, n_topics)), axis=1)[:, :n_interests]
    topic = np.where(
        rng.random(n) < 0.8,
        interests[session_of, rng.integers(n_interests, size=n)],
        rng.integers(n_topics, size=n),
    )
    # a topic without items falls back to a uniform item
    has_items = topic_mass[topic] > 0
    target = cum_before[topic] + rng.random(n) * topic_mass[topic]
    picked = by_topic[np.minimum(np.searchsorted(cum, target, side="right"), n_items - 1)]
    items = np.where(has_items, picked, rng.integers(n_items, size=n)).astype(np.int64)

    history = behaviour_histories(users, items, max_len)
    sims = np.einsum("nd,nkd->nk", vec[items], vec[np.clip(history, 0, None)])
    sims = np.where(history >= 0, sims, -np.inf).max(axis=1)
    sims = np.where(np.isfinite(sims), sims, 0.0)  # empty history
    logit = (
        scale * sims
        + rng.normal(0.0, 0.5, size=n_items)[items]
        + rng.normal(0.0, 0.5, size=n_users)[users]
    )
    logit -= np.quantile(logit, 1.0 - positive_rate)
    prob = 1.0 / (1.0 + np.exp(-logit))
    labels = (rng.random(n) < prob).astype(np.float32)
    ids = np.stack([users, items, topic_of[items]], axis=1).astype(np.int64)
    fields = (Field("user", n_users), Field("item", n_items), Field("topic", n_topics))
    return CTRDataset(
        ids=ids,
        labels=labels,
        fields=fields,
        name="synthetic-seq",
        oracle=prob.astype(np.float32),
        history=history,
        history_field=1,
        groups=users.astype(np.int64),
    )
