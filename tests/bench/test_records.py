from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedlab.bench import (
    RECORD_KEYS,
    BenchRecord,
    RecordWriter,
    append_records,
    config_hash,
    format_bytes,
    load_records,
    read_records,
    write_records,
)


def _rec(method: str = "qr", auc: float = 0.9) -> BenchRecord:
    return BenchRecord(
        suite="ctr",
        dataset="synthetic",
        method=method,
        model="deepfm",
        compression=10.0,
        memory_bytes=1234,
        metrics={"auc": auc},
        timing={"train_s": 1.0},
        seed=0,
    )


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    write_records(path, [_rec("qr"), _rec("hash", 0.8)])
    back = read_records(path)
    assert [r.method for r in back] == ["qr", "hash"]
    assert back[1].metrics == {"auc": 0.8}
    append_records(path, [_rec("ue")])
    assert [r.method for r in read_records(path)] == ["qr", "hash", "ue"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_design_keys_present(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_records(path, [_rec()])
    data = json.loads(path.read_text())
    for key in (
        "suite",
        "dataset",
        "model",
        "method",
        "compression",
        "memory_bytes",
        "metrics",
        "timing",
        "params",
        "seed",
        "embedlab_version",
    ):
        assert key in data


def test_nan_becomes_null(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write_records(path, [_rec(auc=float("nan"))])
    assert json.loads(path.read_text())["metrics"]["auc"] is None


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="results file does not exist"):
        read_records(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_rec().to_json() + "\n{not json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl line 2: not valid JSON"):
        read_records(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="holds no records"):
        read_records(empty)
    missing = tmp_path / "missing_keys.jsonl"
    missing.write_text('{"suite": "ctr"}\n')
    with pytest.raises(ValueError, match=r"line 1: missing required keys \['dataset', 'method'\]"):
        read_records(missing)


def test_format_bytes() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KB"
    assert format_bytes(3 * 1024**2) == "3.0 MB"
    assert format_bytes(None) == "-"


def test_append_never_rewrites_and_headers_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    write_records(path, [_rec("qr")])  # an old file: records only, no header
    before = path.read_bytes()
    writer = RecordWriter(path)
    assert [r.method for r in writer.recorded()] == ["qr"]
    writer.write_header("embedlab bench ctr --methods hash")
    writer.write(_rec("hash"))
    assert path.read_bytes().startswith(before)  # appended, never rewritten
    header = json.loads(path.read_text().splitlines()[1])
    assert header["kind"] == "header" and header["command"] == "embedlab bench ctr --methods hash"
    assert set(header) >= {"version", "git", "machine", "time"}
    assert header["machine"]["cpus"] and header["version"]
    assert [r.method for r in read_records(path)] == ["qr", "hash"]
    append_records(path, [_rec("ue")])
    assert [r.method for r in read_records(path)] == ["qr", "hash", "ue"]


def test_truncated_last_line_is_skipped_then_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    write_records(path, [_rec("qr")])
    with path.open("a") as fh:
        fh.write(_rec("hash").to_json()[:25])  # a run killed in the middle of a write
    with pytest.warns(UserWarning, match="runs.jsonl line 2: skipped a truncated last line"):
        assert [r.method for r in read_records(path)] == ["qr"]
    writer = RecordWriter(path)
    with pytest.warns(UserWarning, match="dropped a truncated last line"):
        writer.write(_rec("ue"))
    assert [r.method for r in read_records(path)] == ["qr", "ue"]  # no warning now
    assert path.read_text().count("\n") == 2


def test_only_headers_hold_no_records(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    RecordWriter(path).write_header("embedlab bench ctr")
    assert RecordWriter(path).recorded() == []
    with pytest.raises(ValueError, match="holds no records"):
        read_records(path)


def test_load_records_dataframe(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    write_records(tmp_path / "a" / "ctr.jsonl", [_rec("qr"), _rec("hash", 0.8)])
    RecordWriter(tmp_path / "b.jsonl").write_header("x")
    append_records(tmp_path / "b.jsonl", [_rec("ue", 0.7)])
    df = load_records([tmp_path / "a" / "*.jsonl", tmp_path / "b.jsonl"])
    assert list(df["method"]) == ["qr", "hash", "ue"]
    assert list(df["metrics.auc"]) == [0.9, 0.8, 0.7]
    assert {"suite", "seed", "timing.train_s", "config_hash", "source"} <= set(df.columns)
    assert df["source"].iloc[2].endswith("b.jsonl")
    with pytest.raises(FileNotFoundError, match="no records file matches"):
        load_records(str(tmp_path / "none*.jsonl"))
    with pytest.raises(ValueError, match="paths must name at least one records file"):
        load_records([])


def test_config_hash_is_order_free_and_changes_with_settings() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    assert len(config_hash({})) == 12


def test_readme_lists_the_documented_keys() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for key in RECORD_KEYS:
        assert f"| `{key.name}` | {key.unit} |" in readme, key.name
