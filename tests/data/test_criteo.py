"""Criteo loader: log^2 buckets, missing values, min_count vocabulary, layouts, errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from embedlab.data import load_criteo
from embedlab.data.criteo import (
    CAT_COLUMNS,
    CRITEO_COLUMNS,
    INT_COLUMNS,
    MISSING_BUCKET,
    bucketize_counts,
)


def row(
    label: object, ints: Sequence[object] = (), cats: Sequence[str] = (), sep: str = "\t"
) -> str:
    """One Criteo line; unspecified columns are ``1`` (ints) and ``"aa"`` (categoricals)."""
    i = [str(v) for v in ints] + ["1"] * (13 - len(ints))
    c = list(cats) + ["aa"] * (26 - len(cats))
    return sep.join([str(label), *i, *c])


def write(path: Path, rows: Sequence[str], header: bool = False, sep: str = "\t") -> Path:
    lines = ([sep.join(CRITEO_COLUMNS)] if header else []) + list(rows)
    path.write_text("\n".join(lines) + "\n")
    return path


def naive_bucket(v: float) -> object:
    if math.isnan(v):
        return "missing"
    return int(math.log(v) ** 2) if v > 2 else int(v)


def test_bucketize_matches_naive_rule() -> None:
    rng = np.random.default_rng(0)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        values = np.concatenate(
            [rng.integers(-5, 5, 50), rng.integers(0, 10**6, 50), rng.uniform(-3, 3, 20)]
        ).astype(np.float64)
        values[rng.random(len(values)) < 0.1] = np.nan
        got = bucketize_counts(values)
        for v, b in zip(values.tolist(), got.tolist(), strict=True):
            expect = naive_bucket(v)
            if expect == "missing":
                assert b == np.iinfo(np.int64).min
            else:
                assert b == expect
    np.testing.assert_array_equal(
        bucketize_counts(np.array([-3.0, 0.0, 2.0, 3.0, 1000.0, np.inf])),
        [-3, 0, 2, 1, 47, np.iinfo(np.int64).min],
    )


def test_fields_labels_and_missing_bucket(tmp_path: Path) -> None:
    rows = [
        row(1, ints=["", 5], cats=["", "x"]),
        row(0, ints=["", -1], cats=["", "x"]),
        row(0, ints=[3, ""], cats=["y", "x"]),
        row(1, ints=["nan", 5], cats=["y", "z"]),
    ]
    ds = load_criteo(write(tmp_path / "train.txt", rows), min_count=1)
    assert [f.name for f in ds.fields] == list(INT_COLUMNS + CAT_COLUMNS)
    assert ds.ids.shape == (4, 39)
    np.testing.assert_array_equal(ds.labels, [1, 0, 0, 1])
    # I1: missing (3 rows) is its own bucket, ranked first; 3 -> floor(ln(3)^2) = 1
    assert ds.ids[:, 0].tolist() == [1, 1, 2, 1]
    assert ds.fields[0].cardinality == 3  # OOV + missing + bucket 1
    # I2: 5 -> bucket 2 (x2), -1 -> its own bucket, missing -> its own bucket
    assert ds.ids[:, 1].tolist() == [1, 2, 3, 1]
    # C1: missing is a token like any other; C2: x (3 rows) ranks before z
    c1, c2 = 13, 14
    assert ds.ids[:, c1].tolist() == [1, 1, 2, 2]
    assert ds.ids[:, c2].tolist() == [1, 1, 1, 2]


def test_min_count_maps_rare_values_to_oov(tmp_path: Path) -> None:
    cats = ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"]
    rows = [row(i % 2, cats=[c]) for i, c in enumerate(cats)]
    f = write(tmp_path / "t.txt", rows)
    ds = load_criteo(f, min_count=3)
    col = ds.ids[:, 13]
    assert col.tolist() == [1] * 5 + [2] * 3 + [0] * 3  # a, b kept by count; c, d -> OOV 0
    assert ds.fields[13].cardinality == 3
    assert load_criteo(f, min_count=1).fields[13].cardinality == 5
    # a column whose values are all rare is only the OOV id
    assert load_criteo(f, min_count=100).fields[13].cardinality == 1


def test_csv_with_header_and_tsv_agree(tmp_path: Path) -> None:
    rows_tsv = [row(1, ints=[4, "", 7], cats=["a", "b"]), row(0, cats=["", "b"])]
    rows_csv = [r.replace("\t", ",") for r in rows_tsv]
    a = load_criteo(write(tmp_path / "a.txt", rows_tsv), min_count=1)
    b = load_criteo(write(tmp_path / "b.csv", rows_csv, header=True, sep=","), min_count=1)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.fields == b.fields


@pytest.mark.parametrize("chunksize", [1, 2, 3])
def test_chunking_and_max_rows(tmp_path: Path, chunksize: int) -> None:
    rng = np.random.default_rng(1)
    rows = [
        row(int(rng.integers(0, 2)), ints=[int(rng.integers(0, 50))], cats=[f"v{rng.integers(4)}"])
        for _ in range(20)
    ]
    f = write(tmp_path / "t.txt", rows)
    ref = load_criteo(f, min_count=2, chunksize=1000)
    ds = load_criteo(f, min_count=2, chunksize=chunksize)
    np.testing.assert_array_equal(ds.ids, ref.ids)
    assert len(load_criteo(f, min_count=1, max_rows=7, chunksize=chunksize)) == 7


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    f = tmp_path / "t.txt"
    f.write_text(row(1) + "\n\n" + row(0) + "\n")
    assert len(load_criteo(f, min_count=1)) == 2


def test_short_row_is_an_error_not_padded(tmp_path: Path) -> None:
    # a short row used to get missing trailing cells silently; its cells may belong elsewhere
    f = tmp_path / "t.txt"
    f.write_text(row(1, cats=["b"] * 26) + "\n" + "\t".join(["0"] + ["1"] * 13 + ["b"] * 20) + "\n")
    with pytest.raises(ValueError, match=r"t\.txt line 2: expected 40 columns, got 34"):
        load_criteo(f, min_count=1)


def test_errors_name_file_and_line(tmp_path: Path) -> None:
    bad_int = write(tmp_path / "i.txt", [row(0), row(1), row(0, ints=[1, "abc"])])
    with pytest.raises(ValueError, match=r"i\.txt line 3: I2 must be a number or empty, got 'abc'"):
        load_criteo(bad_int)
    bad_label = write(tmp_path / "l.txt", [row(0), row(2)])
    with pytest.raises(ValueError, match=r"l\.txt line 2: label must be 0/1 or -1/\+1, got '2'"):
        load_criteo(bad_label)
    too_many = write(tmp_path / "m.txt", [row(0), row(0) + "\textra"], header=True)
    with pytest.raises(ValueError, match=r"m\.txt line 3: expected 40 columns, got 41"):
        load_criteo(too_many)
    short_first = write(tmp_path / "s.txt", ["0\t1\t2"])
    with pytest.raises(ValueError, match=r"s\.txt line 1: expected 40 columns .* got 3"):
        load_criteo(short_first)
    bad_header = tmp_path / "h.csv"
    bad_header.write_text(",".join(["y", *CRITEO_COLUMNS[1:]]) + "\n" + row(0, sep=",") + "\n")
    with pytest.raises(ValueError, match=r"h\.csv line 1: a Criteo header must be label, I1"):
        load_criteo(bad_header)


def test_empty_and_header_only(tmp_path: Path) -> None:
    empty = tmp_path / "e.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"must hold at least one row, got an empty file"):
        load_criteo(empty)
    header_only = write(tmp_path / "h.csv", [], header=True, sep=",")
    with pytest.raises(ValueError, match=r"must hold at least one data row, got none"):
        load_criteo(header_only)


def test_argument_errors(tmp_path: Path) -> None:
    f = write(tmp_path / "t.txt", [row(0)])
    with pytest.raises(ValueError, match=r"min_count must be >= 1, got 0"):
        load_criteo(f, min_count=0)
    with pytest.raises(ValueError, match=r"chunksize must be >= 1, got 0"):
        load_criteo(f, chunksize=0)
    with pytest.raises(ValueError, match=r"data path does not exist"):
        load_criteo(tmp_path / "missing.txt")


def test_shared_sample(require_shared: Callable[[str], Path]) -> None:
    ds = load_criteo(require_shared("samples/criteo_sample.txt"), min_count=1)
    assert ds.ids.shape == (200, 39)
    assert ds.fields[0].name == "I1" and ds.fields[-1].name == "C26"
    assert set(np.unique(ds.labels).tolist()) == {0.0, 1.0}
    assert ds.positive_rate == pytest.approx(0.245)  # measured
    # I1 is missing in 90 of the 200 rows: the missing bucket is the most frequent, id 1
    assert int((ds.ids[:, 0] == 1).sum()) == 90
    small = load_criteo(require_shared("samples/criteo_sample.txt"), min_count=10)
    assert all(f.cardinality >= 1 for f in small.fields)
    assert (small.ids == 0).any()  # rare values fell to OOV


def test_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "u.txt"
    f.write_bytes((row(0) + "\n" + row(1)).encode() + b"\xc3\x28\n")
    with pytest.raises(ValueError, match=r"u\.txt line 2: not valid UTF-8 text \(byte 0xc3"):
        load_criteo(f, min_count=1)


def test_infinite_count_is_an_error(tmp_path: Path) -> None:
    f = write(tmp_path / "i.txt", [row(0), row(1, ints=["1e999"])])
    with pytest.raises(ValueError, match=r"i\.txt line 2: I1 must be a finite number or empty"):
        load_criteo(f, min_count=1)


def test_quote_is_an_ordinary_character_and_crlf_is_read(tmp_path: Path) -> None:
    # a stray quote must not swallow the following lines into one cell
    f = tmp_path / "q.txt"
    f.write_bytes((row(0, cats=['"ab']) + "\r\n" + row(1) + "\r\n" + row(0) + "\r\n").encode())
    ds = load_criteo(f, min_count=1)
    assert len(ds) == 3
    assert ds.fields[-1].cardinality == 2  # 'aa' stayed 'aa', not 'aa\r'
    assert ds.ids[0, 13] != ds.ids[1, 13]  # C1: '"ab' vs 'aa'


def test_huge_negative_counts_do_not_become_the_missing_bucket() -> None:
    got = bucketize_counts(np.array([-1e20, -1e300, np.nan, -3.0]))
    assert got.tolist() == [-(2**53), -(2**53), MISSING_BUCKET, -3]
