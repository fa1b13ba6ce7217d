"""The benchmark record: one measured run, one JSON object per line of a ``.jsonl`` file."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embedlab._io import atomic_write_text

__all__ = ["BenchRecord", "append_records", "read_records", "write_records"]

_REQUIRED = ("suite", "dataset", "method")


@dataclass
class BenchRecord:
    """One run of (suite, dataset, model, method, compression, seed).

    ``status`` is ``"ok"`` for a measured run and ``"infeasible"`` when the
    method cannot reach the budget (``error`` says why); infeasible runs have
    empty ``metrics``.
    """

    suite: str
    dataset: str
    method: str
    model: str | None = None
    compression: float | None = None
    memory_bytes: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    embedlab_version: str = ""
    status: str = "ok"
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps(_clean(asdict(self)), sort_keys=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "record") -> BenchRecord:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: must be a JSON object, got {type(data).__name__}")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ValueError(f"{where}: missing required keys {missing}")
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        return cls(**kwargs)


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf floats become None (strict JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _clean(obj.item())
    return obj


def write_records(path: str | os.PathLike[str], records: Iterable[BenchRecord]) -> None:
    """Write records as JSON lines, atomically (a failure keeps the old file whole)."""
    atomic_write_text(path, "".join(rec.to_json() + "\n" for rec in records))


def append_records(path: str | os.PathLike[str], records: Sequence[BenchRecord]) -> None:
    """Add records to an existing file (or create it), keeping the file whole on failure."""
    path = Path(path)
    old = read_records(path) if path.exists() else []
    write_records(path, [*old, *records])


def read_records(path: str | os.PathLike[str]) -> list[BenchRecord]:
    """Read a ``.jsonl`` file; a bad line raises ``ValueError`` naming file and line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"results file does not exist: {path}")
    out: list[BenchRecord] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {lineno}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
            out.append(BenchRecord.from_dict(data, where=where))
    if not out:
        raise ValueError(f"results file {path} holds no records")
    return out
