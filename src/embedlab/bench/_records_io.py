"""Files of records: append-only JSON lines with a header line per invocation.

A records file is written by appending only: each ``embedlab bench ... --json FILE``
first appends a header line (``{"kind": "header", "command": ..., "version": ...,
"git": ..., "machine": {...}, "time": ...}``), then one line per measured run, each
with one ``write`` of the whole line, a flush and an ``fsync``, so an interrupted grid
leaves complete lines. A run killed in the middle of a write may leave a truncated last
line: readers skip it with a warning, and the next append cuts it off first. Files
written before headers existed (records only) read the same.
"""

from __future__ import annotations

import glob
import json
import os
import platform
import subprocess
import sys
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedlab._io import atomic_write_text
from embedlab.bench._record import BenchRecord, _clean

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "HEADER_KIND",
    "RecordWriter",
    "append_records",
    "load_records",
    "read_records",
    "run_header",
    "write_records",
]

HEADER_KIND = "header"
STDOUT = "-"
_GLOB_CHARS = frozenset("*?[")


def run_header(command: str, **extra: Any) -> dict[str, Any]:
    """The header line of one invocation: command, version, git hash, machine, UTC time.

    ``git`` is the short commit of the checkout embedlab runs from (``None`` for an
    installed package or without git); ``extra`` keys are added as given.
    """
    from embedlab import __version__

    return {
        "kind": HEADER_KIND,
        "command": command,
        "version": __version__,
        "git": _git_hash(),
        "machine": {
            "host": platform.node(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch": _version_of("torch"),
        },
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


def _git_hash() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    return text if out.returncode == 0 and text else None


def _version_of(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


class RecordWriter:
    """Appends records to a JSON-lines file, or writes them to stdout for ``"-"``.

    Args:
        path: the file (created with its folder when missing), or ``"-"`` for stdout.

    Example:
        >>> out = RecordWriter("runs.jsonl")  # doctest: +SKIP
        >>> previous = out.recorded()  # what a resumed grid may skip  # doctest: +SKIP
        >>> out.write_header("embedlab bench ctr ...")  # doctest: +SKIP
        >>> out.write(record)  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.to_stdout = str(path) == STDOUT
        self.path = Path(path)
        self._checked_tail = False

    def recorded(self) -> list[BenchRecord]:
        """The records already in the file (none for stdout or a new file)."""
        if self.to_stdout or not self.path.exists():
            return []
        return _read(self.path)

    def write_header(self, command: str, **extra: Any) -> None:
        """Append the header line of this invocation (see :func:`run_header`)."""
        self._write_line(json.dumps(_clean(run_header(command, **extra))))

    def write(self, record: BenchRecord) -> None:
        """Append one record: one ``write`` of the whole line, flush, ``fsync``."""
        self._write_line(record.to_json())

    def _write_line(self, line: str) -> None:
        data = line + "\n"
        if self.to_stdout:
            sys.stdout.write(data)
            sys.stdout.flush()
            return
        if not self._checked_tail:
            _cut_truncated_tail(self.path)
            self._checked_tail = True
        _append_bytes(self.path, data.encode("utf-8"))


def _append_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:  # one write for a line of a few KB; a loop only if the OS splits it
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut_truncated_tail(path: Path) -> None:
    """Drop a last line without its newline (a write cut short), so appends start clean."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        block = min(size, 1 << 20)
        fh.seek(size - block)
        tail = fh.read(block)
        keep = size - block + tail.rfind(b"\n") + 1  # 0 when the file is one broken line
        warnings.warn(
            f"{path}: dropped a truncated last line ({size - keep} bytes) "
            "left by an interrupted run",
            stacklevel=3,
        )
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())


def write_records(path: str | os.PathLike[str], records: Iterable[BenchRecord]) -> None:
    """Write a new file of records, atomically (a failure keeps the old file whole).

    This replaces the file; benchmark commands append with :class:`RecordWriter`.
    """
    atomic_write_text(path, "".join(rec.to_json() + "\n" for rec in records))


def append_records(path: str | os.PathLike[str], records: Sequence[BenchRecord]) -> None:
    """Append records to a file (created when missing); existing lines are never rewritten."""
    writer = RecordWriter(path)
    for record in records:
        writer.write(record)


def read_records(path: str | os.PathLike[str]) -> list[BenchRecord]:
    """Read a ``.jsonl`` file of records, skipping header lines.

    A bad line raises ``ValueError`` naming file and line, except a truncated last line
    (no newline at its end: a write cut short), which is skipped with a warning.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"results file does not exist: {path}")
    out = _read(path)
    if not out:
        raise ValueError(f"results file {path} holds no records")
    return out


def _read(path: Path) -> list[BenchRecord]:
    out: list[BenchRecord] = []
    with path.open(encoding="utf-8") as fh:
        lines = fh.readlines()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {lineno}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            if lineno == len(lines) and not line.endswith("\n"):
                warnings.warn(f"{where}: skipped a truncated last line", stacklevel=3)
                continue
            raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
        if isinstance(data, dict) and data.get("kind") == HEADER_KIND:
            continue
        out.append(BenchRecord.from_dict(data, where=where))
    return out


def expand_paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named by ``paths``: each a file or a glob pattern (``runs/*.jsonl``), in order."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise ValueError("paths must name at least one records file, got none")
    out: list[Path] = []
    for item in items:
        text = os.fspath(item)
        if not Path(text).exists() and _GLOB_CHARS & set(text):
            hits = sorted(glob.glob(text))
            if not hits:
                raise FileNotFoundError(f"no records file matches {text!r}")
            out.extend(Path(h) for h in hits)
        else:
            out.append(Path(text))
    return out


def load_records(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> pd.DataFrame:
    """Records of one or more files (or glob patterns) as one pandas DataFrame.

    One row per record, in file order. Columns: the top-level keys (``suite``,
    ``dataset``, ``method``, ``compression``, ``seed``, ...), then ``metrics.KEY``,
    ``timing.KEY`` and ``params.KEY`` for every key any record has (missing values are
    NaN / None), and ``source``, the file the record came from. Every key is listed
    with its unit in :data:`embedlab.bench.RECORD_KEYS`.

    Example:
        >>> df = load_records(["ctr.jsonl", "runs/*.jsonl"])  # doctest: +SKIP
        >>> df.groupby("method")["metrics.auc"].mean()  # doctest: +SKIP
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for path in expand_paths(paths):
        rows.extend({**flatten_record(r), "source": str(path)} for r in read_records(path))
    return pd.DataFrame(rows)


def flatten_record(record: BenchRecord) -> dict[str, Any]:
    """``{"suite": ..., "metrics.auc": ..., "timing.train_s": ..., "params.dim": ...}``."""
    data = _clean(record.__dict__)
    out = {k: v for k, v in data.items() if k not in ("metrics", "timing", "params")}
    for group in ("metrics", "timing", "params"):
        out.update({f"{group}.{k}": v for k, v in data[group].items()})
    return out
