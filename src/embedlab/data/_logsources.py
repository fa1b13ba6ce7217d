"""Log sources of ``prepare``: ``name[(key=value, ...)]:PATH`` -> a :class:`LogReader`.

The same parsers as the in-memory loaders (``criteo.py``, ``avazu.py``, ``libfm.py``,
``csvlog.py``) read each format, so a prepared folder holds the values
``load_ctr`` would see.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedlab._registry import Registry, parse_spec
from embedlab._validation import check_int
from embedlab.data._encode import LogReader, check_file, check_path
from embedlab.data._sources import FRAPPE_FIELDS, find_role_files, frappe_files
from embedlab.data.avazu import avazu_log
from embedlab.data.criteo import criteo_log
from embedlab.data.csvlog import csv_log
from embedlab.data.libfm import libfm_log

__all__ = ["LOG_SOURCES", "LogSource", "open_log", "parse_log_spec"]

_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*(\([^()]*\))?\s*:(.*)$", re.DOTALL)


@dataclass(frozen=True)
class LogSource:
    """How to open one kind of log: ``open(path, chunk_rows, **options) -> LogReader``."""

    open: Callable[..., LogReader]
    min_count: int
    summary: str
    options: tuple[str, ...] = ()


LOG_SOURCES: Registry[LogSource] = Registry("log source")


def _criteo(path: Path, chunk_rows: int, *, max_rows: int | None = None) -> LogReader:
    return criteo_log(check_file(path, "criteo path"), chunksize=chunk_rows, max_rows=max_rows)


def _avazu(path: Path, chunk_rows: int, *, max_rows: int | None = None) -> LogReader:
    return avazu_log(check_file(path, "avazu path"), chunksize=chunk_rows, max_rows=max_rows)


def _libfm(path: Path, chunk_rows: int) -> LogReader:
    files = [path] if path.is_file() else find_role_files(path)
    return libfm_log(files, field_names=None, chunk_lines=chunk_rows)


def _frappe(path: Path, chunk_rows: int) -> LogReader:
    files = [path] if path.is_file() else frappe_files(path)
    return libfm_log(files, field_names=FRAPPE_FIELDS, chunk_lines=chunk_rows)


def _csv(
    path: Path,
    chunk_rows: int,
    *,
    label: str = "label",
    dense: str | None = None,
    drop: str | None = None,
    max_rows: int | None = None,
) -> LogReader:
    return csv_log(
        check_file(path, "csv path"),
        label=label,
        dense=dense,
        drop=drop,
        chunksize=chunk_rows,
        max_rows=max_rows,
    )


for _name, _source in {
    "avazu": LogSource(_avazu, 10, "Avazu CSV (click, hour, categorical columns)", ("max_rows",)),
    "criteo": LogSource(_criteo, 10, "Criteo TSV/CSV (label, I1..I13, C1..C26)", ("max_rows",)),
    "csv": LogSource(
        _csv,
        1,
        "CSV with a header: csv(label=click, dense=a|b, drop=id):FILE",
        ("dense", "drop", "label", "max_rows"),
    ),
    "frappe": LogSource(_frappe, 1, "Frappe libFM files: DIR (train?, validation, test) or FILE"),
    "libfm": LogSource(_libfm, 1, "libFM FILE, or DIR with *train*, *valid*, *test* files"),
}.items():
    LOG_SOURCES.register(_name)(_source)


def parse_log_spec(spec: str) -> tuple[str, dict[str, Any], Path]:
    """Split ``"name:PATH"`` or ``"name(key=value, ...):PATH"`` into its parts.

    Raises:
        ValueError: the spec does not parse, the name is unknown (the message lists
            the valid names) or an option is not one of the source's.

    Example:
        >>> parse_log_spec("csv(label=click, drop=id):log.csv")
        ('csv', {'label': 'click', 'drop': 'id'}, PosixPath('log.csv'))
    """
    m = _SPEC.match(spec) if isinstance(spec, str) else None
    if m is None or not m.group(3).strip():
        raise ValueError(
            f"log source must look like name:PATH or name(key=value, ...):PATH, got {spec!r}"
        )
    name = m.group(1).replace("-", "_")
    source = LOG_SOURCES.get(name)
    _, options = parse_spec(name + (m.group(2) or ""))
    for key in options:
        if key not in source.options:
            raise ValueError(
                f"unknown option {key!r} for log source {name!r}; "
                f"valid options: {', '.join(source.options) or 'none'}"
            )
    return name, options, Path(m.group(3).strip()).expanduser()


def open_log(spec: str, *, chunk_rows: int) -> tuple[str, LogReader, LogSource]:
    """``(name, reader, source)``: the log named by ``spec``, read ``chunk_rows`` rows at a time."""
    name, options, path = parse_log_spec(spec)
    source = LOG_SOURCES.get(name)
    if "max_rows" in options:
        options["max_rows"] = check_int("max_rows", options["max_rows"], min_value=1)
    return name, source.open(check_path(path), chunk_rows, **options), source
