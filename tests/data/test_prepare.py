"""``prepare_ctr`` / ``embedlab data prepare``: streamed shards equal the in-memory loaders."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _ctr_logs import (  # tests/data is on sys.path (pytest's rootdir-relative import)
    assert_matches_in_memory,
    avazu_log,
    criteo_log,
    csv_log,
    same_data,
)
from typer.testing import CliRunner

from embedlab.cli import app
from embedlab.data import (
    CTRDataset,
    CTRShards,
    load_avazu,
    load_criteo,
    load_csv,
    load_ctr,
    prepare_ctr,
)
from embedlab.data._keys import KeyCounter, split_of_rows, value_keys
from embedlab.data._logsources import parse_log_spec
from embedlab.data.libfm import load_libfm

runner = CliRunner()


def sorted_rows(ids: np.ndarray, labels: np.ndarray) -> np.ndarray:
    rows = np.column_stack([ids, labels.astype(np.int64)])
    return rows[np.lexsort(rows.T[::-1])]


def test_frappe_same_rows_and_ids_as_in_memory(
    require_shared: Callable[[str], Path], tmp_path: Path
) -> None:
    frappe = require_shared("frappe")
    shards = prepare_ctr(f"frappe:{frappe}", tmp_path / "out", shard_rows=20_000)
    memory = load_ctr(f"frappe:{frappe}")
    assert shards.fields == memory.fields
    assert shards.name == "frappe"
    # the union of the splits: the same multiset of (ids, label) rows
    got = [shards.to_memory(s) for s in ("train", "valid", "test")]
    want = [memory.train, memory.valid, memory.test]
    np.testing.assert_array_equal(
        sorted_rows(np.concatenate([d.ids for d in got]), np.concatenate([d.labels for d in got])),
        sorted_rows(
            np.concatenate([d.ids for d in want]), np.concatenate([d.labels for d in want])
        ),
    )
    # and row by row: the files in order, split by the documented rule
    parts = load_libfm([frappe / "frappe.validation.libfm", frappe / "frappe.test.libfm"])
    whole = CTRDataset(
        ids=np.concatenate([p.ids for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        fields=shards.fields,
        name="frappe",
    )
    assert_matches_in_memory(shards, whole)
    assert shards.manifest["n_rows"] == {s: shards.n_rows(s) for s in ("train", "valid", "test")}
    assert len(shards.shard_files("train")) == -(-shards.n_rows("train") // 20_000)


@pytest.mark.parametrize("min_count", [1, 3])
@pytest.mark.parametrize("chunk_rows", [64, 100_000])
def test_criteo_equals_load_criteo(tmp_path: Path, min_count: int, chunk_rows: int) -> None:
    log = criteo_log(tmp_path / "day_0.tsv")
    shards = prepare_ctr(
        f"criteo:{log}",
        tmp_path / "out",
        min_count=min_count,
        chunk_rows=chunk_rows,
        shard_rows=128,
        row_group_rows=50,
    )
    assert shards.n_dense == 0  # the count columns are bucketised fields, as in load_criteo
    assert_matches_in_memory(shards, load_criteo(log, min_count=min_count))
    vocab = shards.manifest["fields"][16]["vocab"]  # C4: ~10% missing, Zipf ids
    assert vocab["offset"] == 1 and vocab["order"] == "count"
    assert (vocab["oov_rows"] > 0) == (min_count > 1)


def test_gz_log_gives_the_same_shards(tmp_path: Path) -> None:
    plain = prepare_ctr(f"criteo:{criteo_log(tmp_path / 'a.tsv')}", tmp_path / "a")
    packed = prepare_ctr(f"criteo:{criteo_log(tmp_path / 'b.tsv.gz', gz=True)}", tmp_path / "b")
    for s in ("train", "valid", "test"):
        same_data(plain.to_memory(s), packed.to_memory(s))


def test_truncated_gz_names_the_file(tmp_path: Path) -> None:
    log = criteo_log(tmp_path / "b.tsv.gz", gz=True)
    log.write_bytes(log.read_bytes()[:-40])
    with pytest.raises(ValueError, match=r"b\.tsv\.gz is not a valid gzip file"):
        prepare_ctr(f"criteo:{log}", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_avazu_equals_load_avazu(tmp_path: Path) -> None:
    log = avazu_log(tmp_path / "train.csv")
    shards = prepare_ctr(f"avazu:{log}", tmp_path / "out", min_count=2, shard_rows=100)
    assert [f.name for f in shards.fields][:2] == ["hour_of_day", "weekday"]
    assert shards.manifest["fields"][0]["vocab"] is None  # fixed: ids are the hour
    assert_matches_in_memory(shards, load_avazu(log, min_count=2))


def test_csv_with_dense_and_drop(tmp_path: Path) -> None:
    log = csv_log(tmp_path / "log.csv")
    shards = prepare_ctr(f"csv(label=click, dense=price, drop=row):{log}", tmp_path / "out")
    assert [f.name for f in shards.fields] == ["user", "item", "city"]
    assert shards.n_dense == 1
    batch = next(shards.iter_batches("train", 8))
    assert batch.dense is not None and batch.dense.shape == (8, 1)
    assert_matches_in_memory(shards, load_csv(log, label="click", dense="price", drop="row"))
    in_memory = load_ctr(f"csv:{log}", label="click", dense=("price",), drop="row")
    same_data(
        in_memory.train, load_csv(log, label="click", dense="price", drop="row").split().train
    )


def test_libfm_min_count_puts_oov_first_and_keeps_index_order(tmp_path: Path) -> None:
    log = tmp_path / "x.libfm"
    log.write_text("1 5:1 90:1\n0 7:1 90:1\n1 5:1 91:1\n0 9:1 90:1\n" * 3 + "1 11:1 90:1\n")
    shards = prepare_ctr(f"libfm:{log}", tmp_path / "a", fractions=(1.0, 0.0, 0.0))
    rows = shards.to_memory("train")
    assert [f.cardinality for f in shards.fields] == [4, 2]  # no OOV id at min_count 1
    assert rows.ids[:5].tolist() == [[0, 0], [1, 0], [0, 1], [2, 0], [0, 0]]
    assert shards.n_rows("valid") == 0 and list(shards.iter_batches("valid", 4, world_size=2)) == []
    assert shards.steps_per_epoch("valid", 4, 0, 2) == 0
    with pytest.raises(ValueError, match=r"split 'valid' of .* has no rows; nothing to load"):
        shards.to_memory("valid")
    rare = prepare_ctr(f"libfm:{log}", tmp_path / "b", min_count=2, fractions=(1.0, 0.0, 0.0))
    ids = rare.to_memory("train").ids
    assert [f.cardinality for f in rare.fields] == [4, 3]  # 11 (seen once) -> OOV id 0
    assert ids[:4].tolist() == [[1, 1], [2, 1], [1, 2], [3, 1]] and ids[-1].tolist() == [0, 1]


def test_reads_the_log_in_bounded_chunks(tmp_path: Path) -> None:
    log = criteo_log(tmp_path / "day.tsv", n=1000)
    seen: list[tuple[str, int, int | None]] = []
    prepare_ctr(
        f"criteo:{log}",
        tmp_path / "out",
        chunk_rows=50,
        shard_rows=300,
        progress=lambda stage, done, total: seen.append((stage, done, total)),
    )
    reads = [done for stage, done, _ in seen if stage == "read"]
    assert len(reads) == 20 and reads[-1] == 1000  # 20 chunks, never all rows at once
    assert max(np.diff([0, *reads])) <= 50
    writes = [(done, total) for stage, done, total in seen if stage == "write"]
    assert writes[-1][0] == writes[-1][1] == len(writes)


def test_split_rule_is_deterministic_and_near_the_fractions() -> None:
    rows = np.arange(100_000)
    a = split_of_rows(rows, seed=0, fractions=(0.8, 0.1, 0.1))
    np.testing.assert_array_equal(
        a[5000:6000], split_of_rows(rows[5000:6000], seed=0, fractions=(0.8, 0.1, 0.1))
    )
    assert np.allclose(np.bincount(a) / len(a), [0.8, 0.1, 0.1], atol=0.005)
    assert (a != split_of_rows(rows, seed=1, fractions=(0.8, 0.1, 0.1))).mean() > 0.2


def test_key_counter_merges_like_a_dict() -> None:
    rng = np.random.default_rng(0)
    values = rng.zipf(1.3, 50_000) % 5000
    counter = KeyCounter()
    for start in range(0, len(values), 777):
        counter.add(*value_keys(values[start : start + 777]), first_row=start)
    vocab = counter.finalize(min_count=3, order="count")
    uniq, first, counts = np.unique(values, return_index=True, return_counts=True)
    kept = np.flatnonzero(counts >= 3)
    kept = kept[np.lexsort((first[kept], -counts[kept]))]  # by count, ties by first row
    expected = np.zeros(uniq.max() + 1, dtype=np.int64)
    expected[uniq[kept]] = np.arange(1, len(kept) + 1)
    np.testing.assert_array_equal(
        vocab.lookup(value_keys(values)[0][value_keys(values)[1]]), expected[values]
    )
    assert vocab.oov_rows == int(counts[counts < 3].sum())


def test_parse_log_spec() -> None:
    assert parse_log_spec("csv(label=click, dense=a|b):x.csv") == (
        "csv",
        {"label": "click", "dense": "a|b"},
        Path("x.csv"),
    )
    with pytest.raises(ValueError, match=r"unknown log source 'nope'; valid log sources: avazu"):
        parse_log_spec("nope:x")
    with pytest.raises(ValueError, match=r"unknown option 'label' for log source 'criteo'"):
        parse_log_spec("criteo(label=y):x")
    with pytest.raises(ValueError, match=r"log source must look like name:PATH"):
        parse_log_spec("criteo")


def test_bad_logs_name_file_line_and_rule(tmp_path: Path) -> None:
    log = criteo_log(tmp_path / "day.tsv", n=30)
    lines = log.read_text().splitlines()
    lines[16] = "\t".join(lines[16].split("\t")[:-2])
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"day\.tsv line 17: expected 40 columns, got 38"):
        prepare_ctr(f"criteo:{log}", tmp_path / "out", chunk_rows=8)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
    empty = tmp_path / "empty.csv"
    empty.write_text("label,a,b\n")
    with pytest.raises(ValueError, match=r"csv file must hold at least one data row, got none"):
        prepare_ctr(f"csv:{empty}", tmp_path / "out")
    (tmp_path / "e.libfm").write_text("")
    with pytest.raises(ValueError, match=r"libfm file must hold at least one data line"):
        prepare_ctr(f"libfm:{tmp_path / 'e.libfm'}", tmp_path / "out")
    with pytest.raises(ValueError, match=r"min_count must be >= 1, got 0"):
        prepare_ctr(f"criteo:{log}", tmp_path / "out", min_count=0)
    with pytest.raises(ValueError, match=r"fractions must sum to 1, got 1.1"):
        prepare_ctr(f"criteo:{log}", tmp_path / "out", fractions=(0.8, 0.2, 0.1))
    with pytest.raises(ValueError, match=r"data path does not exist: .*nope\.tsv"):
        prepare_ctr(f"criteo:{tmp_path / 'nope.tsv'}", tmp_path / "out")
    with pytest.raises(ValueError, match=r"label must name columns of the header .* got y"):
        prepare_ctr(f"csv(label=y):{csv_log(tmp_path / 'l.csv')}", tmp_path / "out")


def test_output_folder_safety(tmp_path: Path) -> None:
    log = criteo_log(tmp_path / "day.tsv", n=50)
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"refusing to write shards into .*user.*notes\.txt"):
        prepare_ctr(f"criteo:{log}", user, force=True)
    assert (user / "notes.txt").read_text() == "mine"
    out = tmp_path / "out"
    out.mkdir()  # an empty folder is fine
    first = prepare_ctr(f"criteo:{log}", out, min_count=1)
    with pytest.raises(ValueError, match=r"already holds embedlab shards; pass force=True"):
        prepare_ctr(f"criteo:{log}", out)
    second = prepare_ctr(f"criteo:{log}", out, min_count=5, force=True)
    assert first.fields != second.fields and CTRShards(out).fields == second.fields
    assert sorted(p.name for p in tmp_path.iterdir()) == ["day.tsv", "out", "user"]
    (out / "train" / "mine.txt").write_text("x")
    with pytest.raises(ValueError, match=r"refusing to replace .*out.*embedlab did not write"):
        prepare_ctr(f"criteo:{log}", out, force=True)
    assert (out / "train" / "mine.txt").exists()


def test_cli_prepare(tmp_path: Path) -> None:
    log = criteo_log(tmp_path / "day.tsv", n=200)
    out = tmp_path / "shards"
    args = ["data", "prepare", f"criteo:{log}", "-o", str(out), "--min-count", "2", "--quiet"]
    result = runner.invoke(app, [*args, "--shard-rows", "64", "--split", "0.5,0.25,0.25"])
    assert result.exit_code == 0, result.output
    assert "prepared 200 rows" in result.output
    doc = json.loads((out / "manifest.json").read_text())
    assert doc["min_count"] == 2 and doc["split"]["fractions"] == [0.5, 0.25, 0.25]
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--force" in again.output
    for bad, match in [
        (["--min-count", "0"], "--min-count must be >= 1, got 0"),
        (["--shard-rows", "0"], "--shard-rows must be >= 1, got 0"),
        (["--split", "0.5,0.5"], "--split must be three fractions"),
    ]:
        result = runner.invoke(app, [*args, "--force", *bad])
        assert result.exit_code == 2 and match in result.output, result.output
