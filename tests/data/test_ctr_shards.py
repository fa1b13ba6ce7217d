"""``CTRShards``: lazy batches, shuffle, rank / worker partition, and bad shard folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from _ctr_logs import criteo_log, csv_log, same_data
from torch.utils.data import DataLoader

from embedlab._io import canonical_checksum, file_xxh3
from embedlab.data import CTRBatch, CTRShards, load_ctr, prepare_ctr

SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("shards")
    log = criteo_log(tmp / "day.tsv", n=1500)
    prepare_ctr(f"criteo:{log}", tmp / "out", min_count=2, shard_rows=150, row_group_rows=40)
    return tmp / "out"


@pytest.fixture
def folder(prepared: Path, tmp_path: Path) -> Path:
    """A private copy of the prepared folder, to damage."""
    return Path(shutil.copytree(prepared, tmp_path / "copy"))


def rows_of(batches: list[CTRBatch]) -> np.ndarray:
    """``(n, n_fields + 1)`` ids and label of every row, sorted (a row multiset)."""
    rows = np.concatenate([np.column_stack([b.ids.numpy(), b.labels.numpy()]) for b in batches])
    return rows[np.lexsort(rows.T[::-1])]


def rewrite_manifest(folder: Path, edit: object) -> None:
    doc = json.loads((folder / "manifest.json").read_text())
    edit(doc)  # type: ignore[operator]
    doc["checksum"] = canonical_checksum(doc)
    (folder / "manifest.json").write_text(json.dumps(doc))


def test_batches_in_order_match_to_memory(prepared: Path) -> None:
    shards = CTRShards(prepared)
    assert shards.n_dense == 0 and len(shards.fields) == 39
    batches = list(shards.iter_batches("train", 64))
    assert all(len(b) == 64 for b in batches[:-1]) and 0 < len(batches[-1]) <= 64
    b = batches[0]
    assert b.ids.dtype == torch.int64 and b.ids.shape == (64, 39)
    assert b.labels.dtype == torch.float32 and b.labels.shape == (64,) and b.dense is None
    memory = shards.to_memory("train")
    np.testing.assert_array_equal(torch.cat([b.ids for b in batches]).numpy(), memory.ids)
    np.testing.assert_array_equal(torch.cat([b.labels for b in batches]).numpy(), memory.labels)
    dropped = list(shards.iter_batches("train", 64, drop_last=True))
    assert len(dropped) == shards.n_rows("train") // 64
    assert shards.steps_per_epoch("train", 64) == len(batches)
    assert shards.steps_per_epoch("train", 64, drop_last=True) == len(dropped)


def test_shuffle_is_deterministic_and_keeps_every_row(prepared: Path) -> None:
    shards = CTRShards(prepared)

    def epoch(seed: int, epoch: int) -> list[CTRBatch]:
        return list(shards.iter_batches("train", 50, shuffle_buffer=200, seed=seed, epoch=epoch))

    first = epoch(0, 0)
    again = epoch(0, 0)
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a.ids, b.ids) and torch.equal(a.labels, b.labels)
    ordered = list(shards.iter_batches("train", 50))
    np.testing.assert_array_equal(rows_of(first), rows_of(ordered))
    flat = torch.cat([b.ids for b in first])
    assert not torch.equal(flat, torch.cat([b.ids for b in ordered]))
    assert not torch.equal(flat, torch.cat([b.ids for b in epoch(0, 1)]))
    assert not torch.equal(flat, torch.cat([b.ids for b in epoch(1, 0)]))
    # a buffer larger than the split still shuffles and keeps every row
    big = list(shards.iter_batches("valid", 7, shuffle_buffer=10_000, seed=3))
    np.testing.assert_array_equal(rows_of(big), rows_of(list(shards.iter_batches("valid", 7))))


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ranks_partition_the_rows(prepared: Path, world_size: int) -> None:
    shards = CTRShards(prepared)
    per_rank = [
        list(
            shards.iter_batches(
                "train", 32, shuffle_buffer=64, epoch=2, rank=r, world_size=world_size
            )
        )
        for r in range(world_size)
    ]
    everything = rows_of([b for batches in per_rank for b in batches])
    np.testing.assert_array_equal(everything, rows_of(list(shards.iter_batches("train", 32))))
    files = shards.shard_files("train")
    for r, batches in enumerate(per_rank):  # shard i goes to rank i % world_size
        mine = sum(pq.read_metadata(f).num_rows for f in files[r::world_size])
        assert sum(len(b) for b in batches) == mine
    assert shards.steps_per_epoch("train", 32, 0, world_size) == min(len(b) for b in per_rank)


def test_dataloader_workers_split_the_shards(prepared: Path) -> None:
    shards = CTRShards(prepared)
    ds = shards.dataset("train", 40, shuffle_buffer=100, seed=1)
    ds.set_epoch(1)
    for workers in (0, 2):
        batches = list(DataLoader(ds, batch_size=None, num_workers=workers))
        assert all(isinstance(b, CTRBatch) for b in batches)
        np.testing.assert_array_equal(
            rows_of(batches), rows_of(list(shards.iter_batches("train", 40)))
        )
        assert len(batches) == shards.steps_per_epoch("train", 40, num_workers=workers)


def test_shards_source_and_dense(prepared: Path, tmp_path: Path) -> None:
    splits = load_ctr(f"shards:{prepared}")
    shards = CTRShards(prepared)
    for name in SPLITS:
        same_data(getattr(splits, name), shards.to_memory(name))
    assert splits.name == "criteo"
    dense = prepare_ctr(
        f"csv(label=click, dense=price):{csv_log(tmp_path / 'l.csv')}", tmp_path / "d"
    )
    loaded = load_ctr(f"shards:{tmp_path / 'd'}")
    assert loaded.train.dense is not None and loaded.train.dense.shape[1] == 1
    batch = next(dense.iter_batches("test", 4, shuffle_buffer=8)).to("cpu")
    assert batch.dense is not None and batch.dense.dtype == torch.float32


def test_distributed_arguments(prepared: Path) -> None:
    shards = CTRShards(prepared)
    n = len(shards.shard_files("valid"))
    with pytest.raises(
        ValueError, match=rf"world_size must be <= the number of shards of split 'valid' \({n}\)"
    ):
        shards.iter_batches("valid", 8, world_size=n + 1)
    with pytest.raises(ValueError, match=r"rank must be in \[0, world_size=2\), got 2"):
        shards.iter_batches("train", 8, rank=2, world_size=2)
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got 0"):
        shards.iter_batches("train", 0)
    with pytest.raises(ValueError, match=r"split must be one of train, valid, test, got 'dev'"):
        shards.n_rows("dev")


def test_truncated_shard_names_it_and_other_splits_still_read(folder: Path) -> None:
    bad = folder / "train" / "part-00001.parquet"
    bad.write_bytes(bad.read_bytes()[:-100])
    shards = CTRShards(folder)  # opening does not read the shards
    with pytest.raises(
        ValueError, match=r"shard .*train/part-00001\.parquet is truncated .* the manifest says"
    ):
        list(shards.iter_batches("train", 64))
    assert len(shards.to_memory("valid")) == shards.n_rows("valid")
    assert sum(len(b) for b in shards.iter_batches("train", 64, rank=0, world_size=2)) > 0
    with pytest.raises(ValueError, match=r"train/part-00001\.parquet is truncated"):
        CTRShards(folder, verify=True)


def test_corrupt_and_missing_shards(folder: Path) -> None:
    bad = folder / "test" / "part-00000.parquet"
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    bad.write_bytes(bytes(data))
    shards = CTRShards(folder)
    with pytest.raises(
        ValueError, match=r"shard .*test/part-00000\.parquet is corrupt: its XXH3-128"
    ):
        shards.to_memory("test")
    (folder / "valid" / "part-00000.parquet").unlink()
    with pytest.raises(ValueError, match=r"shard valid/part-00000\.parquet is missing from"):
        list(shards.iter_batches("valid", 8))
    assert shards.n_rows("train") == len(shards.to_memory("train"))


def test_manifest_that_does_not_match_the_shards(folder: Path) -> None:
    rewrite_manifest(folder, lambda d: d["fields"][20].update(name="renamed"))
    with pytest.raises(ValueError, match=r"has columns .* but the manifest's fields.*renamed"):
        list(CTRShards(folder).iter_batches("train", 8))


def test_vocabulary_or_cardinality_that_does_not_match(folder: Path) -> None:
    rewrite_manifest(folder, lambda d: d["fields"][3].update(cardinality=2))
    with pytest.raises(
        ValueError,
        match=r"the vocabulary of field 'I4' has \d+ values \(\+1 out-of-vocabulary id\) "
        r"but the cardinality is 2",
    ):
        CTRShards(folder)
    rewrite_manifest(folder, lambda d: d["fields"][3]["vocab"].update(rows=1))
    with pytest.raises(
        ValueError,
        match=r"vocabulary .*field-003\.parquet of field 'I4' holds \d+ values but the "
        r"manifest says 1",
    ):
        CTRShards(folder)
    # a vocabulary cut to match: now the shards hold ids beyond the cardinality
    path = folder / "vocab" / "field-003.parquet"
    pq.write_table(pq.read_table(path).slice(0, 1), path)
    rewrite_manifest(
        folder,
        lambda d: d["fields"][3]["vocab"].update(
            bytes=path.stat().st_size, xxh3_128=file_xxh3(path)
        ),
    )
    shards = CTRShards(folder)
    with pytest.raises(
        ValueError, match=r"ids of field 'I4' must be < its cardinality 2 \(manifest\)"
    ):
        list(shards.iter_batches("train", 8))


def test_ids_beyond_the_cardinality_in_a_shard(folder: Path) -> None:
    path = folder / "valid" / "part-00000.parquet"
    table = pq.read_table(path)
    ids = table.column("C1").to_numpy().copy()
    ids[5] = 10_000
    table = table.set_column(table.schema.get_field_index("C1"), "C1", pa.array(ids))
    pq.write_table(table, path, write_statistics=False)  # no footer statistics to warn early

    def refresh(doc: dict) -> None:  # type: ignore[type-arg]
        entry = doc["shards"]["valid"][0]
        entry.update(bytes=path.stat().st_size, xxh3_128=file_xxh3(path))

    rewrite_manifest(folder, refresh)
    card = CTRShards(folder).fields[13].cardinality
    with pytest.raises(ValueError, match=rf"ids of field 'C1' must be in \[0, {card}\), got 10000"):
        CTRShards(folder).to_memory("valid")
    pq.write_table(table, path)  # with statistics: found from the footer, before reading
    rewrite_manifest(folder, refresh)
    with pytest.raises(ValueError, match=rf"ids of field 'C1' must be < its cardinality {card}"):
        CTRShards(folder).check("valid")


def test_not_a_shards_folder(tmp_path: Path, folder: Path) -> None:
    with pytest.raises(ValueError, match=r"is not a CTR shards folder: it has no manifest\.json"):
        CTRShards(tmp_path)
    text = (folder / "manifest.json").read_text()
    (folder / "manifest.json").write_text(text.replace('"min_count": 2', '"min_count": 3'))
    with pytest.raises(ValueError, match=r"manifest\.json is corrupted or was altered"):
        CTRShards(folder)
