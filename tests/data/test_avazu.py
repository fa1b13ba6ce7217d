"""Avazu loader: hour split into hour of day and weekday, vocabulary, errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedlab.data import load_avazu
from embedlab.data.avazu import split_hour

HEADER = "id,click,hour,C1,banner_pos,site_id"


def write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_split_hour_known_dates() -> None:
    stamps = ["14102100", "14102623", "14103013", "20010107"]
    hour, weekday = split_hour(np.array(stamps), path=Path("x"), linenos=np.arange(4))
    assert hour.tolist() == [0, 23, 13, 7]
    # 2014-10-21 Tuesday (1), 2014-10-26 Sunday (6), 2014-10-30 Thursday (3), 2020-01-01 Wed (2)
    assert weekday.tolist() == [1, 6, 3, 2]
    for s, h, d in zip(stamps, hour.tolist(), weekday.tolist(), strict=True):
        ref = dt.datetime(2000 + int(s[:2]), int(s[2:4]), int(s[4:6]), int(s[6:]))
        assert (ref.hour, ref.weekday()) == (h, d)


@pytest.mark.parametrize("bad", ["14133100", "141021", "1410210x", "14102124"])
def test_split_hour_rejects_bad_values(bad: str) -> None:
    with pytest.raises(ValueError, match=rf"f\.csv line 9: hour must be YYMMDDHH, got '{bad}'"):
        split_hour(np.array([bad]), path=Path("f.csv"), linenos=np.array([9]))


def test_load_fields_and_labels(tmp_path: Path) -> None:
    rows = [
        "1,0,14102100,1005,0,aa",
        "2,1,14102113,1005,1,aa",
        "3,0,14102613,1002,0,bb",
    ]
    ds = load_avazu(write(tmp_path / "train.csv", rows), min_count=1)
    assert [f.name for f in ds.fields] == [
        "hour_of_day",
        "weekday",
        "C1",
        "banner_pos",
        "site_id",
    ]
    assert [f.cardinality for f in ds.fields] == [24, 7, 3, 3, 3]
    np.testing.assert_array_equal(ds.labels, [0, 1, 0])
    np.testing.assert_array_equal(ds.ids[:, 0], [0, 13, 13])
    np.testing.assert_array_equal(ds.ids[:, 1], [1, 1, 6])
    np.testing.assert_array_equal(ds.ids[:, 2], [1, 1, 2])  # 1005 (2 rows) ranks first


def test_min_count_and_chunks(tmp_path: Path) -> None:
    rows = [
        f"{i},{i % 2},141021{i % 24:02d},{1005 if i < 6 else 1002 + i},0,s{i % 3}"
        for i in range(10)
    ]
    f = write(tmp_path / "t.csv", rows)
    ds = load_avazu(f, min_count=3, chunksize=3)
    assert ds.ids[:, 2].tolist() == [1] * 6 + [0] * 4  # the rare C1 values share OOV id 0
    ref = load_avazu(f, min_count=3)
    np.testing.assert_array_equal(ds.ids, ref.ids)
    assert len(load_avazu(f, max_rows=4)) == 4


def test_errors(tmp_path: Path) -> None:
    no_click = write(tmp_path / "test.csv", ["1,14102100,1005"], header="id,hour,C1")
    with pytest.raises(
        ValueError, match=r"test\.csv line 1: an Avazu header must name columns click"
    ):
        load_avazu(no_click)
    bad_hour = write(tmp_path / "h.csv", ["1,0,14102100,1,0,a", "2,0,1410,1,0,a"])
    with pytest.raises(ValueError, match=r"h\.csv line 3: hour must be YYMMDDHH, got '1410'"):
        load_avazu(bad_hour)
    bad_click = write(tmp_path / "c.csv", ["1,yes,14102100,1,0,a"])
    with pytest.raises(ValueError, match=r"c\.csv line 2: label must be 0/1"):
        load_avazu(bad_click)
    dup = write(tmp_path / "d.csv", ["1,0,14102100,1,1"], header="id,click,hour,C1,C1")
    with pytest.raises(ValueError, match=r"column names must be unique"):
        load_avazu(dup)
    header_only = write(tmp_path / "e.csv", [])
    with pytest.raises(ValueError, match=r"must hold at least one data row, got none"):
        load_avazu(header_only)
    with pytest.raises(ValueError, match=r"min_count must be >= 1, got 0"):
        load_avazu(header_only, min_count=0)


def test_shared_sample(require_shared: Callable[[str], Path]) -> None:
    ds = load_avazu(require_shared("samples/avazu_sample.txt"), min_count=1)
    assert ds.ids.shape == (100, 23)
    assert [f.name for f in ds.fields][:5] == [
        "hour_of_day",
        "weekday",
        "C1",
        "banner_pos",
        "site_id",
    ]
    assert "id" not in [f.name for f in ds.fields]
    assert ds.positive_rate == pytest.approx(0.2)  # measured
    assert set(ds.ids[:, 1].tolist()) == {1}  # the sample is from 2014-10-21, a Tuesday


def test_bad_bytes_rows_and_header_name_the_line(tmp_path: Path) -> None:
    f = tmp_path / "u.csv"
    f.write_bytes(f"{HEADER}\n1,0,14102100,1005,0,a\n2,1,14102100,1005,0,b\xff\n".encode("latin1"))
    with pytest.raises(ValueError, match=r"u\.csv line 3: not valid UTF-8 text \(byte 0xff"):
        load_avazu(f, min_count=1)
    short = write(tmp_path / "s.csv", ["1,0,14102100,1005,0,a", "2,1,14102100,1005"])
    with pytest.raises(ValueError, match=r"s\.csv line 3: expected 6 columns, got 4"):
        load_avazu(short, min_count=1)
    unnamed = write(tmp_path / "n.csv", ["1,0,14102100,1005,0,a,b"], header=HEADER + ",")
    with pytest.raises(ValueError, match=r"n\.csv line 1: column names must not be empty"):
        load_avazu(unnamed, min_count=1)
