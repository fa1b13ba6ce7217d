"""Behaviour sequences: histories, the per-user time split, the MovieLens loader, the generator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedlab.data import (
    CTRDataset,
    DataPathError,
    behaviour_histories,
    load_ctr,
    load_movielens_sequences,
    make_sequence_ctr,
    temporal_split,
)
from embedlab.tables import Field


def _naive_histories(groups: np.ndarray, items: np.ndarray, max_len: int) -> np.ndarray:
    out = np.full((len(groups), max_len), -1, dtype=np.int64)
    for i in range(len(groups)):
        before = [int(items[k]) for k in range(i) if groups[k] == groups[i]]
        kept = before[-max_len:]
        out[i, : len(kept)] = kept
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("max_len", [1, 3, 8])
def test_histories_match_a_naive_loop(seed: int, max_len: int) -> None:
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 6, 60)  # interleaved groups
    items = rng.integers(0, 100, 60)
    np.testing.assert_array_equal(
        behaviour_histories(groups, items, max_len), _naive_histories(groups, items, max_len)
    )


def test_truncation_keeps_the_most_recent_items_oldest_first() -> None:
    hist = behaviour_histories(np.zeros(6, np.int64), np.arange(10, 16), 3)
    np.testing.assert_array_equal(
        hist,
        [[-1, -1, -1], [10, -1, -1], [10, 11, -1], [10, 11, 12], [11, 12, 13], [12, 13, 14]],
    )


def test_histories_errors() -> None:
    with pytest.raises(ValueError, match="max_len must be >= 1, got 0"):
        behaviour_histories(np.zeros(3), np.zeros(3), 0)
    with pytest.raises(ValueError, match="groups and items must be 1-d arrays of one length"):
        behaviour_histories(np.zeros(3), np.zeros(4), 2)
    assert behaviour_histories(np.zeros(0), np.zeros(0), 2).shape == (0, 2)


def _grouped(sizes: list[int]) -> CTRDataset:
    groups = np.repeat(np.arange(len(sizes)), sizes)
    n = groups.size
    return CTRDataset(
        ids=np.arange(n)[:, None],  # the row number, to see where each row went
        labels=np.arange(n) % 2,
        fields=[Field("row", n)],
        groups=groups,
    )


def test_temporal_split_sends_each_groups_last_rows_to_test() -> None:
    splits = temporal_split(_grouped([20, 5, 3]), valid_fraction=0.1, test_fraction=0.2)
    rows = {p: set(getattr(splits, p).ids[:, 0].tolist()) for p in ("train", "valid", "test")}
    # group 0 (rows 0-19): 4 test, 2 valid; group 1 (20-24): 1 test, 1 valid; group 2 (25-27)
    assert rows["test"] == {16, 17, 18, 19, 24, 27}
    assert rows["valid"] == {14, 15, 23, 26}
    assert rows["train"] == set(range(14)) | {20, 21, 22, 25}
    for part in (splits.train, splits.valid, splits.test):
        assert part.groups is not None


def test_temporal_split_errors() -> None:
    data = _grouped([10, 10])
    with pytest.raises(ValueError, match="valid_fraction \\+ test_fraction must be < 1"):
        temporal_split(data, valid_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="test_fraction must be > 0, got 0"):
        temporal_split(data, test_fraction=0)
    with pytest.raises(ValueError, match="data must have groups"):
        temporal_split(
            CTRDataset(ids=np.zeros((4, 1), np.int64), labels=[0, 1, 0, 1], fields=[Field("a", 1)])
        )
    with pytest.raises(ValueError, match="leaves train empty: 2 groups of at most 2 rows"):
        temporal_split(_grouped([2, 2]))


def ml_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ml"
    d.mkdir()
    # user 7: movies 10 (t=100), 30 (t=300), 20 (t=200), 40 (t=300, after 30 in the file),
    # 50 (t=400)
    (d / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        "7,10,4.0,100\n"
        "3,20,3.5,50\n"
        "7,30,5.0,300\n"
        "7,20,1.0,200\n"
        "3,10,4.5,60\n"
        "7,40,2.0,300\n"
        "7,50,4.0,400\n"
        "3,30,5.0,70\n"
    )
    (d / "movies.csv").write_text(
        "movieId,title,genres\n"
        '10,"Toy Story (1995)",Animation|Comedy\n'
        "20,Heat (1995),Action\n"
        "30,Odd,(no genres listed)\n"
        "40,Forty,Drama|Action\n"
    )
    return d


def test_loader_on_a_tiny_directory(tmp_path: Path) -> None:
    splits = load_movielens_sequences(
        ml_dir(tmp_path), max_len=2, valid_fraction=0.2, test_fraction=0.2
    )
    assert [f.name for f in splits.fields] == ["user", "movie", "genre"]
    # users {3, 7}; movies {10, 20, 30, 40, 50}; genres sorted:
    # (no genres listed), (unknown), Action, Animation, Drama
    assert [f.cardinality for f in splits.fields] == [2, 5, 5]
    assert splits.name == "movielens-seq" and splits.train.history_field == 1
    # user 3 (id 0): 20, 10, 30 -> train 20, valid 10, test 30
    # user 7 (id 1): 10, 20, 30, 40, 50 -> train 10, 20, 30; valid 40; test 50
    train, valid, test = splits.train, splits.valid, splits.test
    np.testing.assert_array_equal(train.ids[:, :2], [[0, 1], [1, 0], [1, 1], [1, 2]])
    np.testing.assert_array_equal(train.labels, [0, 1, 0, 1])
    assert train.history is not None and valid.history is not None and test.history is not None
    assert train.history.shape == (4, 2, 2) and train.history_side_fields == (2,)
    np.testing.assert_array_equal(train.history[..., 0], [[-1, -1], [-1, -1], [0, -1], [0, 1]])
    np.testing.assert_array_equal(valid.ids[:, :2], [[0, 0], [1, 3]])
    np.testing.assert_array_equal(valid.history[..., 0], [[1, -1], [1, 2]])  # 2 most recent
    np.testing.assert_array_equal(test.ids[:, :2], [[0, 2], [1, 4]])
    np.testing.assert_array_equal(test.history[..., 0], [[1, 0], [2, 3]])
    np.testing.assert_array_equal(test.ids[:, 2], [0, 1])  # (no genres listed), (unknown)
    np.testing.assert_array_equal(test.groups, [0, 1])
    # channel 1 is each history movie's first genre, padded where the movie is:
    # movies 10, 20, 30, 40, 50 -> Animation 3, Action 2, (no genres listed) 0, Drama 4, (unknown) 1
    genre_of = np.array([3, 2, 0, 4, 1])
    for part in (train, valid, test):
        assert part.history is not None
        movies, genres = part.history[..., 0], part.history[..., 1]
        np.testing.assert_array_equal(genres, np.where(movies >= 0, genre_of[movies], -1))
    np.testing.assert_array_equal(test.history[..., 1], [[2, 3], [0, 4]])


def test_loader_without_history_genre_keeps_the_id_history(tmp_path: Path) -> None:
    d = ml_dir(tmp_path)
    old = load_movielens_sequences(
        d, max_len=2, valid_fraction=0.2, test_fraction=0.2, history_genre=False
    )
    new = load_movielens_sequences(d, max_len=2, valid_fraction=0.2, test_fraction=0.2)
    assert old.test.history is not None and new.test.history is not None
    assert old.test.history.shape == (2, 2) and old.test.history_side_fields == ()
    np.testing.assert_array_equal(old.test.history, new.test.history[..., 0])
    with pytest.raises(TypeError, match="history_genre"):
        load_movielens_sequences(d, history_genre="yes")  # type: ignore[arg-type]


def test_loader_joined_layout_matches_directory(tmp_path: Path) -> None:
    joined = tmp_path / "joined.csv"
    joined.write_text(
        "user_id,movie_id,rating,timestamp,genres\n"
        "7,10,4,100,Comedy\n"
        "7,20,2,90,Action\n"
        "7,30,5,110,Action\n"
        "7,40,5,120,Action\n"
        "7,50,5,130,Action\n"
    )
    splits = load_movielens_sequences(joined, max_len=3, valid_fraction=0.2, test_fraction=0.2)
    np.testing.assert_array_equal(splits.train.ids[:, 1], [1, 0, 2])  # time order: 20, 10, 30
    assert splits.test.history is not None
    np.testing.assert_array_equal(splits.test.history[..., 0], [[0, 2, 3]])  # 10, 30, 40
    np.testing.assert_array_equal(splits.test.history[..., 1], [[1, 0, 0]])  # Comedy, Action


def test_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(DataPathError, match="data path does not exist"):
        load_movielens_sequences(tmp_path / "nope")
    d = ml_dir(tmp_path)
    (d / "movies.csv").unlink()
    with pytest.raises(
        ValueError, match=r"must hold ratings\.csv and movies\.csv, missing movies\.csv"
    ):
        load_movielens_sequences(d)
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,movie,rating,timestamp,genres\n1,2,3,4,x\n")
    with pytest.raises(ValueError, match="missing movie_id"):
        load_movielens_sequences(bad)
    with pytest.raises(ValueError, match="max_len must be >= 1, got 0"):
        load_movielens_sequences(bad, max_len=0)
    with pytest.raises(ValueError, match="valid_fraction must be > 0"):
        load_movielens_sequences(bad, valid_fraction=-0.1)


def test_load_ctr_specs(tmp_path: Path) -> None:
    d = ml_dir(tmp_path)
    a = load_ctr(f"movielens-seq:{d}", valid_fraction=0.2, test_fraction=0.2)
    b = load_ctr(f"movielens_seq:{d}", seed=3, valid_fraction=0.2, test_fraction=0.2)
    np.testing.assert_array_equal(a.test.history, b.test.history)  # the split is not random
    with pytest.raises(ValueError, match="data source 'movielens_seq' needs a path"):
        load_ctr("movielens-seq")
    with pytest.raises(ValueError, match="data source 'synthetic_seq' takes no path"):
        load_ctr(f"synthetic-seq:{d}")
    with pytest.raises(
        ValueError, match="unknown option 'n_samples' for data source 'synthetic_seq'"
    ):
        load_ctr("synthetic-seq", n_samples=10)
    s = load_ctr("synthetic-seq", n_users=40, n_items=30, n_topics=4, seed=1)
    assert s.name == "synthetic-seq" and s.test.groups is not None and s.test.oracle is not None
    assert len(s.train) > len(s.valid) > 0


def test_make_sequence_ctr_structure_and_determinism() -> None:
    ds = make_sequence_ctr(60, 40, n_topics=5, events_per_user=12, max_len=6, seed=3)
    assert ds.groups is not None and ds.history is not None and ds.oracle is not None
    assert ds.history.shape == (len(ds), 6) and ds.history_field == 1
    # histories are the previous items of the same user, rows in (user, time) order
    np.testing.assert_array_equal(ds.history, _naive_histories(ds.groups, ds.ids[:, 1], 6))
    assert np.all(np.diff(ds.groups) >= 0)
    assert 0.2 < ds.positive_rate < 0.6
    same = make_sequence_ctr(60, 40, n_topics=5, events_per_user=12, max_len=6, seed=3)
    other = make_sequence_ctr(60, 40, n_topics=5, events_per_user=12, max_len=6, seed=4)
    np.testing.assert_array_equal(ds.ids, same.ids)
    np.testing.assert_array_equal(ds.labels, same.labels)
    assert ds.ids.shape != other.ids.shape or not np.array_equal(ds.ids, other.ids)


def test_make_sequence_ctr_errors() -> None:
    with pytest.raises(ValueError, match=r"interests_per_session must be <= n_topics \(2\), got 3"):
        make_sequence_ctr(10, 10, n_topics=2, interests_per_session=3)
    with pytest.raises(ValueError, match=r"positive_rate must be in \(0, 1\), got 1.0"):
        make_sequence_ctr(10, 10, positive_rate=1.0)
    with pytest.raises(ValueError, match="events_per_user must be >= 2, got 1"):
        make_sequence_ctr(10, 10, events_per_user=1)


def test_real_movielens_sequences(require_shared: Callable[[str], Path]) -> None:
    splits = load_movielens_sequences(require_shared("ml-latest-small"))
    n = len(splits.train) + len(splits.valid) + len(splits.test)
    assert n == 100_836
    assert [f.cardinality for f in splits.fields][:2] == [610, 9724]
    train, test = splits.train, splits.test
    assert train.history is not None and test.history is not None and test.groups is not None
    # every user has >= 20 ratings: first (empty-history) rating in train, >= 2 in test
    assert int((train.history[..., 0] < 0).all(axis=1).sum()) == 610
    assert not (test.history[..., 0] < 0).all(axis=1).any()
    # every history item's genre channel is that movie's genre column
    genre_of = np.full(train.fields[1].cardinality, -1)
    for part in (train, splits.valid, test):
        genre_of[part.ids[:, 1]] = part.ids[:, 2]
    movies = train.history[..., 0]
    np.testing.assert_array_equal(
        train.history[..., 1], np.where(movies >= 0, genre_of[movies], -1)
    )
    assert len(np.unique(test.groups)) == 610
    assert np.bincount(test.groups).min() >= 2
    assert 0.4 < train.positive_rate < 0.55
