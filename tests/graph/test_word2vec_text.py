"""The word2vec text reader (node2vec ``.emb`` output); needs no node2vec tool."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlab.graph.word2vec_text import embedding_by_row, read_word2vec_text


def _write_w2v(path: Path, ids: list[str], vecs: np.ndarray) -> Path:
    """Independent writer, as gensim's ``save_word2vec_format`` lays the file out."""
    lines = [f"{len(ids)} {vecs.shape[1]}"]
    lines += [f"{i} " + " ".join(repr(float(x)) for x in v) for i, v in zip(ids, vecs, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_exact(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((7, 5)).astype(np.float32)
    ids = [str(i) for i in rng.permutation(7)]
    got_ids, got = read_word2vec_text(_write_w2v(tmp_path / "a.emb", ids, vecs), dim=5)
    assert got_ids == ids
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, vecs)


def test_embedding_by_row_places_vectors_and_counts_missing(tmp_path: Path) -> None:
    vecs = np.arange(6, dtype=np.float32).reshape(3, 2)
    ids, got = read_word2vec_text(_write_w2v(tmp_path / "a.emb", ["4", "0", "2"], vecs))
    emb, missing = embedding_by_row(ids, got, n_nodes=5)
    expected = np.zeros((5, 2), dtype=np.float32)
    expected[4], expected[0], expected[2] = vecs[0], vecs[1], vecs[2]
    np.testing.assert_array_equal(emb, expected)
    assert missing == 2
    with pytest.raises(ValueError, match=r"ids must be node rows in \[0, 4\), got '4'"):
        embedding_by_row(ids, got, n_nodes=4)


def test_truncated_file(tmp_path: Path) -> None:
    path = _write_w2v(tmp_path / "a.emb", ["0", "1", "2"], np.ones((3, 4), dtype=np.float32))
    text = path.read_text()
    path.write_text(text[: text.rindex("\n2 ")])  # the last vector line is gone
    with pytest.raises(ValueError, match="truncated: the header says 3 vectors, the file has 2"):
        read_word2vec_text(path)
    path.write_text(text[: text.rstrip().rindex(" ")])  # the last line loses its last value
    with pytest.raises(ValueError, match="line 4: expected an id and 4 values, got 3 values"):
        read_word2vec_text(path)


def test_wrong_dims(tmp_path: Path) -> None:
    path = _write_w2v(tmp_path / "a.emb", ["0", "1"], np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"line 1: dim must be 4 \(the width asked for\), got 3"):
        read_word2vec_text(path, dim=4)
    path.write_text("2 3\n0 1 2 3\n1 1 2\n")
    with pytest.raises(ValueError, match="line 3: expected an id and 3 values, got 2 values"):
        read_word2vec_text(path)
    path.write_text("2 3 1\n0 1 2 3\n")
    with pytest.raises(ValueError, match="header must be two positive integers"):
        read_word2vec_text(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("0 1 x 3\n", "line 2: value 'x' is not a number"),
        ("0 1 nan 3\n", "line 2: value 'nan' is not finite"),
        ("0 1 2 3\n0 1 2 3\n", "line 3: id '0' is repeated"),
    ],
)
def test_bad_values(tmp_path: Path, body: str, message: str) -> None:
    n = body.count("\n")
    path = tmp_path / "a.emb"
    path.write_text(f"{n} 3\n{body}")
    with pytest.raises(ValueError, match=message):
        read_word2vec_text(path)


def test_empty_too_long_and_binary(tmp_path: Path) -> None:
    path = tmp_path / "a.emb"
    path.write_text("")
    with pytest.raises(ValueError, match="empty file"):
        read_word2vec_text(path)
    path.write_text("1 2\n0 1 2\n1 3 4\n")
    with pytest.raises(ValueError, match="too long: the header says 1 vectors, the file has 2"):
        read_word2vec_text(path)
    path.write_bytes(b"1 2\n0 \xff\xfe 1\n")  # word2vec's binary format is not text
    with pytest.raises(ValueError, match="not UTF-8"):
        read_word2vec_text(path)
