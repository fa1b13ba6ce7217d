"""libFM loader: shared vocabulary, labels, streaming, errors with file and line."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedlab.data import DataPathError, load_libfm


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_shared_vocabulary_across_files(tmp_path: Path) -> None:
    train = write(tmp_path / "train.libfm", "1 3:1 10:1\n-1 5:1 12:1\n1 3:1 12:1\n")
    test = write(tmp_path / "test.libfm", "+1 7:1 11:1\n0 3:1 10:1\n")
    a, b = load_libfm([train, test], name="toy")
    # field 0 holds global indices {3, 5, 7} -> 0, 1, 2; field 1 {10, 11, 12} -> 0, 1, 2
    assert [f.cardinality for f in a.fields] == [3, 3]
    assert [f.name for f in a.fields] == ["f0", "f1"]
    assert a.fields == b.fields
    np.testing.assert_array_equal(a.ids, [[0, 0], [1, 2], [0, 2]])
    np.testing.assert_array_equal(b.ids, [[2, 1], [0, 0]])
    np.testing.assert_array_equal(a.labels, [1, 0, 1])
    np.testing.assert_array_equal(b.labels, [1, 0])
    assert a.name == b.name == "toy"


def test_single_path_values_and_blank_lines(tmp_path: Path) -> None:
    f = write(tmp_path / "one.libfm", "\n1 4:0.5 9:1\n\n-1.0 2:1 9:2.0\n")
    (ds,) = load_libfm(str(f), field_names=["user", "item"])
    assert [f.name for f in ds.fields] == ["user", "item"]
    np.testing.assert_array_equal(ds.ids, [[1, 0], [0, 0]])
    np.testing.assert_array_equal(ds.labels, [1, 0])


@pytest.mark.parametrize("chunk_lines", [1, 2, 3, 1000])
def test_chunking_does_not_change_result(tmp_path: Path, chunk_lines: int) -> None:
    rng = np.random.default_rng(0)
    lines = [
        f"{rng.choice(['1', '-1'])} {rng.integers(0, 5)}:1 {rng.integers(100, 140)}:1"
        for _ in range(50)
    ]
    f = write(tmp_path / "x.libfm", "\n".join(lines) + "\n")
    (ref,) = load_libfm([f], chunk_lines=10_000)
    (ds,) = load_libfm([f], chunk_lines=chunk_lines)
    np.testing.assert_array_equal(ds.ids, ref.ids)
    np.testing.assert_array_equal(ds.labels, ref.labels)
    # naive reference: sorted distinct global indices per position
    idx = np.array([[int(t.split(":")[0]) for t in line.split()[1:]] for line in lines])
    for j in range(2):
        np.testing.assert_array_equal(ds.ids[:, j], np.unique(idx[:, j], return_inverse=True)[1])


def test_wrong_feature_count_names_file_and_line(tmp_path: Path) -> None:
    f = write(tmp_path / "frappe.test.libfm", "1 1:1 2:1\n\n-1 3:1\n")
    with pytest.raises(ValueError, match=r"frappe\.test\.libfm line 3: expected 2 features, got 1"):
        load_libfm([f])


def test_feature_count_must_match_first_file(tmp_path: Path) -> None:
    a = write(tmp_path / "a.libfm", "1 1:1 2:1\n")
    b = write(tmp_path / "b.libfm", "1 1:1 2:1 3:1\n")
    with pytest.raises(ValueError, match=r"b\.libfm line 1: expected 2 features, got 3"):
        load_libfm([a, b])


@pytest.mark.parametrize("token", ["abc", "3", "x:1", "-3:1", "3:abc"])
def test_bad_token(tmp_path: Path, token: str) -> None:
    f = write(tmp_path / "bad.libfm", f"1 1:1 2:1\n1 1:1 {token}\n")
    with pytest.raises(
        ValueError, match=r"bad\.libfm line 2: feature 2 must look like index:value"
    ):
        load_libfm([f])


@pytest.mark.parametrize("label", ["2", "yes", "0.5"])
def test_bad_label(tmp_path: Path, label: str) -> None:
    f = write(tmp_path / "bad.libfm", f"1 1:1\n{label} 1:1\n")
    with pytest.raises(
        ValueError, match=rf"bad\.libfm line 2: label must be 0/1 or -1/\+1, got '{label}'"
    ):
        load_libfm([f])


def test_label_only_line(tmp_path: Path) -> None:
    f = write(tmp_path / "bad.libfm", "1\n")
    with pytest.raises(ValueError, match=r"line 1: expected at least one feature, got 0"):
        load_libfm([f])


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    f = write(tmp_path / "empty.libfm", text)
    with pytest.raises(ValueError, match=r"must hold at least one data line, got an empty file"):
        load_libfm([f])


def test_argument_errors(tmp_path: Path) -> None:
    f = write(tmp_path / "a.libfm", "1 1:1 2:1\n")
    with pytest.raises(DataPathError, match=r"data path does not exist: .*nope\.libfm"):
        load_libfm([tmp_path / "nope.libfm"])
    with pytest.raises(ValueError, match=r"libfm path must be a file, got directory"):
        load_libfm([tmp_path])
    with pytest.raises(ValueError, match=r"paths must name at least one libfm file"):
        load_libfm([])
    with pytest.raises(
        ValueError, match=r"field_names must have one name per feature position \(2\), got 1"
    ):
        load_libfm([f], field_names=["a"])
    with pytest.raises(ValueError, match=r"chunk_lines must be >= 1, got 0"):
        load_libfm([f], chunk_lines=0)


def test_frappe(require_shared: Callable[[str], Path]) -> None:
    d = require_shared("frappe")
    # speed is a benchmark matter, not a test assert (measured 0.55 s on an idle machine)
    valid, test = load_libfm([d / "frappe.validation.libfm", d / "frappe.test.libfm"])
    assert (len(valid), len(test)) == (57_722, 28_860)
    assert valid.n_fields == test.n_fields == 10
    # users, items, daytime, weekday, isweekend, homework, cost, weather, country, city:
    # the union of the two files holds 5,328 of the 5,382 features of the full data set
    assert [f.cardinality for f in valid.fields] == [913, 4082, 7, 7, 2, 3, 2, 9, 76, 227]
    assert sum(f.cardinality for f in valid.fields) == 5328
    for ds in (valid, test):
        assert set(np.unique(ds.labels).tolist()) == {0.0, 1.0}
        assert abs(ds.positive_rate - 1 / 3) < 0.01  # measured 0.3303 and 0.3304


def test_non_utf8_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "u.libfm"
    f.write_bytes(b"1 1:1 2:1\n0 1:1 2:1\n\n1 1:1 \x802:1\n")
    with pytest.raises(ValueError, match=r"u\.libfm line 4: not valid UTF-8 text \(byte 0x80"):
        load_libfm(f)


@pytest.mark.parametrize("token", ["99999999999999999999:1", "\u00b2:1", "\u0663:1"])
def test_index_beyond_int64_or_not_ascii_digits(tmp_path: Path, token: str) -> None:
    # regression: a 20-digit index overflowed int64; "²".isdigit() is True but int("²") fails
    f = write(tmp_path / "big.libfm", f"1 1:1 2:1\n0 1:1 {token}\n")
    with pytest.raises(
        ValueError, match=r"big\.libfm line 2: feature 2 must look like index:value"
    ):
        load_libfm(f)


def test_one_huge_token_does_not_widen_the_chunk(tmp_path: Path) -> None:
    # fixed-width strings would allocate n_lines x n_tokens x len(longest token) x 4 bytes
    f = write(tmp_path / "w.libfm", "1 1:1 2:1\n" * 5000 + "1 1:1 2:" + "1" * 200_000 + "\n")
    start = time.perf_counter()
    (ds,) = load_libfm(f)
    assert len(ds) == 5001 and time.perf_counter() - start < 30.0  # a wide chunk: ~12 GB, minutes
