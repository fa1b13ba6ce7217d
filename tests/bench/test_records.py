from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedlab.bench import BenchRecord, append_records, format_bytes, read_records, write_records


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
