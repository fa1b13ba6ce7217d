"""Small generated click logs (Criteo, Avazu, CSV) for the prepare / shards tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from embedlab.data import CTRDataset, CTRShards, make_ctr
from embedlab.data._keys import SPLITS, split_of_rows


def criteo_log(path: Path, n: int = 600, *, seed: int = 0, gz: bool = False) -> Path:
    """A raw Kaggle-layout TSV (no header) with Zipf ids, missing cells and planted labels."""
    ds = make_ctr(n, (40, 25, 9, 300, 5), seed=seed)
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        ints = [str(int(v)) if v >= 0 else "" for v in rng.integers(-2, 60, 13)]
        cats = [f"{ds.ids[i, j % 5] * 7 + j:08x}" for j in range(26)]
        if rng.random() < 0.1:
            cats[3] = ""
        lines.append("\t".join([str(int(ds.labels[i])), *ints, *cats]))
    text = "\n".join(lines) + "\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def avazu_log(path: Path, n: int = 400, *, seed: int = 0) -> Path:
    ds = make_ctr(n, (30, 8, 200), seed=seed)
    rng = np.random.default_rng(seed)
    lines = ["id,click,hour,C1,banner_pos,site_id"]
    for i in range(n):
        hour = f"1410{rng.integers(21, 31)}{rng.integers(0, 24):02d}"
        site = f"s{ds.ids[i, 2]:x}"
        lines.append(f"{i},{int(ds.labels[i])},{hour},{1000 + ds.ids[i, 0]},{ds.ids[i, 1]},{site}")
    path.write_text("\n".join(lines) + "\n")
    return path


def csv_log(path: Path, n: int = 300, *, seed: int = 0) -> Path:
    ds = make_ctr(n, (20, 6, 90), seed=seed)
    rng = np.random.default_rng(seed)
    lines = ["row,user,click,price,item,city"]
    for i in range(n):
        price = "" if rng.random() < 0.1 else f"{rng.uniform(0, 9):.3f}"
        u, c, it = ds.ids[i]
        lines.append(f"{i},u{u},{int(ds.labels[i])},{price},item {it},c{c}")
    path.write_text("\n".join(lines) + "\n")
    return path


def same_data(a: CTRDataset, b: CTRDataset) -> None:
    """Identical fields, rows (ids, labels, dense) in the same order."""
    assert a.fields == b.fields
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.labels, b.labels)
    if a.dense is None or b.dense is None:
        assert a.dense is None and b.dense is None
    else:
        np.testing.assert_array_equal(a.dense, b.dense)


def assert_matches_in_memory(shards: CTRShards, whole: CTRDataset, *, seed: int = 0) -> None:
    """Each split of ``shards`` is exactly the rows of ``whole`` (the log in file order)
    that the split rule sends there, with the same ids."""
    split = split_of_rows(np.arange(len(whole)), seed=seed, fractions=(0.8, 0.1, 0.1))
    for s, name in enumerate(SPLITS):
        expected = whole.subset(np.flatnonzero(split == s), name=shards.name)
        same_data(shards.to_memory(name), expected)
