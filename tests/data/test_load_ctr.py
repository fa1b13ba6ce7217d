"""load_ctr: spec parsing, every source, split protocols and determinism, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from embedlab.data import DATA_SOURCES, CTRSplits, DataPathError, load_ctr, parse_data_spec
from embedlab.data._sources import FRAPPE_FIELDS


def libfm_lines(n: int, seed: int, n_feat: int = 10) -> str:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        feats = " ".join(f"{100 * j + int(rng.integers(0, 5))}:1" for j in range(n_feat))
        rows.append(f"{rng.choice(['1', '-1'])} {feats}")
    return "\n".join(rows) + "\n"


def frappe_dir(tmp_path: Path, *, train: bool = False) -> Path:
    d = tmp_path / "frappe"
    d.mkdir()
    (d / "frappe.validation.libfm").write_text(libfm_lines(100, 0))
    (d / "frappe.test.libfm").write_text(libfm_lines(40, 1))
    if train:
        (d / "frappe.train.libfm").write_text(libfm_lines(60, 2))
    return d


def sizes(s: CTRSplits) -> tuple[int, int, int]:
    return len(s.train), len(s.valid), len(s.test)


def same(a: CTRSplits, b: CTRSplits) -> bool:
    return all(
        np.array_equal(x.ids, y.ids) and np.array_equal(x.labels, y.labels)
        for x, y in ((a.train, b.train), (a.valid, b.valid), (a.test, b.test))
    )


def test_registry_names() -> None:
    assert DATA_SOURCES.names() == [
        "avazu",
        "criteo",
        "csv",
        "frappe",
        "libfm",
        "movielens",
        "movielens_seq",
        "shards",
        "synthetic",
        "synthetic_seq",
    ]
    assert "min_count" in DATA_SOURCES.get("criteo").options
    assert "n_samples" in DATA_SOURCES.get("synthetic").options
    assert not DATA_SOURCES.get("synthetic").needs_path
    assert DATA_SOURCES.get("frappe").needs_path


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("synthetic", ("synthetic", None)),
        ("  frappe:/data/frappe ", ("frappe", Path("/data/frappe"))),
        ("libfm:a/b:c.libfm", ("libfm", Path("a/b:c.libfm"))),
    ],
)
def test_parse_data_spec(spec: str, expected: tuple[str, Path | None]) -> None:
    assert parse_data_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", r"data spec must look like name or name:PATH, got ''"),
        (
            "nope:/x",
            r"unknown data source 'nope'; valid data sources: avazu, criteo, csv, frappe, libfm",
        ),
        ("frappe:", r"data spec must give a path after ':', got 'frappe:'"),
    ],
)
def test_parse_data_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_data_spec(spec)


def test_load_ctr_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data source 'frappe' needs a path: use frappe:PATH"):
        load_ctr("frappe")
    with pytest.raises(ValueError, match=r"data source 'synthetic' takes no path"):
        load_ctr(f"synthetic:{tmp_path}")
    with pytest.raises(DataPathError, match=r"data path does not exist: .*missing"):
        load_ctr(f"criteo:{tmp_path / 'missing'}")
    with pytest.raises(
        ValueError, match=r"unknown option 'foo' for data source 'synthetic'; valid options: "
    ):
        load_ctr("synthetic", foo=1)
    with pytest.raises(
        ValueError,
        match=r"unknown option 'min_count' for data source 'frappe'; valid options: none",
    ):
        load_ctr(f"frappe:{tmp_path}", min_count=1)
    with pytest.raises(ValueError, match=r"seed must be >= 0, got -1"):
        load_ctr("synthetic", seed=-1)


def test_synthetic_split_and_determinism() -> None:
    a = load_ctr("synthetic", n_samples=2000, seed=0)
    assert sizes(a) == (1600, 200, 200)
    assert a.name == a.train.name == a.valid.name == a.test.name == "synthetic"
    assert same(a, load_ctr("synthetic", n_samples=2000, seed=0))
    assert not same(a, load_ctr("synthetic", n_samples=2000, seed=1))
    assert len(load_ctr("synthetic", seed=0, n_samples=500, cardinalities=(5, 3)).fields) == 2


def test_frappe_protocol(tmp_path: Path) -> None:
    d = frappe_dir(tmp_path)
    a = load_ctr(f"frappe:{d}", seed=0)
    assert sizes(a) == (90, 10, 40)  # validation file split 90/10, test file as given
    assert a.name == a.test.name == "frappe"
    assert tuple(f.name for f in a.fields) == FRAPPE_FIELDS
    # one vocabulary over both files: every field's ids cover 0..card-1 over train + valid + test
    ids = np.concatenate([a.train.ids, a.valid.ids, a.test.ids])
    for j, f in enumerate(a.fields):
        assert set(ids[:, j].tolist()) == set(range(f.cardinality))
    assert same(a, load_ctr(f"frappe:{d}", seed=0))
    b = load_ctr(f"frappe:{d}", seed=1)
    assert not same(a, b)
    np.testing.assert_array_equal(a.test.ids, b.test.ids)  # the test file never moves


def test_frappe_with_train_file_and_single_file(tmp_path: Path) -> None:
    d = frappe_dir(tmp_path, train=True)
    assert sizes(load_ctr(f"frappe:{d}")) == (60, 100, 40)
    single = load_ctr(f"frappe:{d / 'frappe.test.libfm'}")
    assert sizes(single) == (32, 4, 4)
    assert single.name == "frappe"


def test_frappe_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        ValueError, match=r"must hold frappe.validation.libfm and frappe.test.libfm"
    ):
        load_ctr(f"frappe:{empty}")
    three = tmp_path / "three.libfm"
    three.write_text(libfm_lines(10, 0, n_feat=3))
    with pytest.raises(ValueError, match=r"frappe lines must have 10 features .* got 3"):
        load_ctr(f"frappe:{three}")


def test_libfm_file_and_directory(tmp_path: Path) -> None:
    f = tmp_path / "all.libfm"
    f.write_text(libfm_lines(50, 0, n_feat=3))
    one = load_ctr(f"libfm:{f}", seed=3)
    assert sizes(one) == (40, 5, 5)
    assert one.name == "libfm"
    d = tmp_path / "splits"
    d.mkdir()
    for role, n in (("train", 30), ("valid", 7), ("test", 9)):
        (d / f"data.{role}.libfm").write_text(libfm_lines(n, n, n_feat=3))
    (d / ".hidden_train").write_text("ignored")
    assert sizes(load_ctr(f"libfm:{d}")) == (30, 7, 9)
    (d / "more_test.libfm").write_text(libfm_lines(3, 1, n_feat=3))
    with pytest.raises(ValueError, match=r"exactly one file with 'test' in its name, got 2"):
        load_ctr(f"libfm:{d}")


def test_criteo_avazu_movielens_sources(tmp_path: Path) -> None:
    criteo = tmp_path / "criteo.txt"
    criteo.write_text("".join(f"{i % 2}" + "\t1" * 13 + "\taa" * 26 + "\n" for i in range(20)))
    c = load_ctr(f"criteo:{criteo}", min_count=1, seed=0)
    assert sizes(c) == (16, 2, 2) and c.name == "criteo" and len(c.fields) == 39
    avazu = tmp_path / "avazu.csv"
    avazu.write_text(
        "id,click,hour,C1\n" + "".join(f"{i},{i % 2},14102100,1005\n" for i in range(20))
    )
    a = load_ctr(f"avazu:{avazu}", min_count=1, max_rows=10)
    assert sizes(a) == (8, 1, 1) and a.name == "avazu"
    ml = tmp_path / "ml.csv"
    ml.write_text(
        "user_id,movie_id,rating,timestamp,genres\n"
        + "".join(f"{i % 3},{i % 5},{i % 5 + 1},{1000 * i},A|B\n" for i in range(30))
    )
    m = load_ctr(f"movielens:{ml}", seed=0)
    assert sizes(m) == (24, 3, 3) and m.name == "movielens"
    assert same(m, load_ctr(f"movielens:{ml}", seed=0))
    assert not same(m, load_ctr(f"movielens:{ml}", seed=1))


def test_real_frappe(require_shared: Callable[[str], Path]) -> None:
    s = load_ctr(f"frappe:{require_shared('frappe')}", seed=0)
    assert sizes(s) == (51_950, 5_772, 28_860)
    assert sum(f.cardinality for f in s.fields) == 5328
    assert s.fields[0] == s.train.fields[0]
    assert s.fields[0].name == "user" and s.fields[0].cardinality == 913


def test_real_samples(require_shared: Callable[[str], Path]) -> None:
    samples = require_shared("samples")
    assert sizes(load_ctr(f"criteo:{samples / 'criteo_sample.txt'}", min_count=1)) == (160, 20, 20)
    assert sizes(load_ctr(f"avazu:{samples / 'avazu_sample.txt'}", min_count=1)) == (80, 10, 10)
    assert sizes(load_ctr(f"movielens:{samples / 'movielens_sample.txt'}")) == (160, 20, 20)
    ml = load_ctr(f"movielens:{require_shared('ml-latest-small')}")
    assert sum(sizes(ml)) == 100_836


def test_options_in_the_spec() -> None:
    from embedlab.data import load_ctr
    from embedlab.data._sources import split_data_spec

    splits = load_ctr("synthetic(n_samples=3000, cardinalities=[40, 7], zipf_exponent=0.8)")
    assert len(splits.train) == 2400 and [f.cardinality for f in splits.fields] == [40, 7]
    # keyword options override the spec's
    assert len(load_ctr("synthetic(n_samples=3000)", n_samples=1000).train) == 800
    assert split_data_spec("csv(label=click):/a/b.csv")[1:] == (
        {"label": "click"},
        Path("/a/b.csv"),
    )
    with pytest.raises(ValueError, match=r"unknown option 'bogus' for data source 'synthetic'"):
        load_ctr("synthetic(bogus=1)")
    with pytest.raises(ValueError, match=r"data spec must give a path after ':'"):
        load_ctr("frappe(x=1):")
