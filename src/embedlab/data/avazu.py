"""Avazu mobile-ads click logs (Kaggle 2014 click-through rate prediction).

A CSV with a header: ``id, click, hour, C1, banner_pos, site_id, site_domain,
site_category, app_id, app_domain, app_category, device_id, device_ip,
device_model, device_type, device_conn_type, C14..C21``. ``hour`` is
``YYMMDDHH`` (e.g. ``14102100`` = 2014-10-21, 00:00).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]

from embedlab._validation import check_int
from embedlab.data._dataset import CTRDataset
from embedlab.data._encode import (
    LogReader,
    PathLike,
    RawChunk,
    at,
    check_file,
    encode_log,
    parse_labels,
)
from embedlab.data._textio import iter_csv_chunks, read_header

__all__ = ["avazu_log", "load_avazu", "split_hour"]

_TIME_FIELDS = ("hour_of_day", "weekday")


def split_hour(
    hour: np.ndarray, *, path: Path, linenos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Hour of day (0-23) and weekday (0 = Monday .. 6 = Sunday) of ``YYMMDDHH`` strings.

    Args:
        hour: ``(n,)`` strings such as ``"14102100"`` (the year is ``20YY``).
        path, linenos: where each value comes from, for the error message.

    Returns:
        Two ``(n,)`` int64 arrays.

    Example:
        >>> h, d = split_hour(np.array(["14102113"]), path=Path("x"), linenos=np.array([2]))
        >>> int(h[0]), int(d[0])  # 2014-10-21 was a Tuesday
        (13, 1)
    """
    text = pd.Series(np.asarray(hour, dtype=object)).str.strip()
    stamp = pd.to_datetime(text, format="%y%m%d%H", errors="coerce")
    bad = (stamp.isna() | (text.str.len() != 8)).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{at(path, int(linenos[row]))}: hour must be YYMMDDHH, got {text.iloc[row]!r}"
        )
    return (
        stamp.dt.hour.to_numpy(dtype=np.int64),
        stamp.dt.day_of_week.to_numpy(dtype=np.int64),
    )


def load_avazu(
    path: PathLike,
    *,
    min_count: int = 10,
    chunksize: int = 500_000,
    max_rows: int | None = None,
    name: str = "avazu",
) -> CTRDataset:
    """Read an Avazu CSV into one dataset: ``click`` is the label, ``id`` is dropped.

    ``hour`` becomes two fields, ``hour_of_day`` (ids 0-23) and ``weekday``
    (ids 0-6, Monday = 0). Every other column is categorical with a vocabulary
    as in :func:`~embedlab.data.criteo.load_criteo`: values seen fewer than
    ``min_count`` times share id 0, kept values get ids ``1..`` by count. The
    file is streamed in chunks of ``chunksize`` rows.

    Args:
        path: the Kaggle ``train`` CSV (or any file with its header; needs ``click``).
        min_count: rarer values map to the out-of-vocabulary id 0.
        chunksize: rows read at once.
        max_rows: read only the first ``max_rows`` rows.
        name: ``name`` of the dataset.

    Returns:
        :class:`CTRDataset` with ``ids`` ``(n, 23)`` for the Kaggle layout:
        ``hour_of_day, weekday, C1, banner_pos, ..., C21``.

    Example:
        >>> ds = load_avazu("train.csv", max_rows=1_000_000)  # doctest: +SKIP
        >>> [f.name for f in ds.fields][:4]  # doctest: +SKIP
        ['hour_of_day', 'weekday', 'C1', 'banner_pos']
    """
    p = check_file(path, "avazu path")
    min_count = check_int("min_count", min_count, min_value=1)
    reader = avazu_log(p, chunksize=chunksize, max_rows=max_rows)
    return encode_log(reader, min_count=min_count, name=name)


def avazu_log(path: Path, *, chunksize: int, max_rows: int | None) -> LogReader:
    """The rows of a checked Avazu file, in chunks: hour of day, weekday, then strings."""
    delimiter, header = read_header(path)
    missing = [c for c in ("click", "hour") if c not in header]
    if missing:
        raise ValueError(
            f"{at(path, 1)}: an Avazu header must name columns click and hour "
            f"(the Kaggle test file has no click), missing {', '.join(missing)}; "
            f"got {', '.join(header[:5])}, ..."
        )
    if not all(header):
        raise ValueError(f"{at(path, 1)}: column names must not be empty, got {', '.join(header)}")
    if len(set(header)) != len(header):
        raise ValueError(f"{at(path, 1)}: column names must be unique, got {', '.join(header)}")
    cat_columns = tuple(c for c in header if c not in ("id", "click", "hour"))

    def chunks() -> Iterator[RawChunk]:
        for chunk, linenos in iter_csv_chunks(
            path,
            header,
            delimiter=delimiter,
            has_header=True,
            chunksize=chunksize,
            max_rows=max_rows,
        ):
            labels = parse_labels(chunk["click"].to_numpy(), path=path, linenos=linenos)
            hour_of_day, weekday = split_hour(chunk["hour"].to_numpy(), path=path, linenos=linenos)
            columns = [hour_of_day, weekday]
            columns += [chunk[c].array for c in cat_columns]
            yield RawChunk(labels, columns, linenos)

    return LogReader(
        "avazu",
        path,
        _TIME_FIELDS + cat_columns,
        chunks(),
        fixed={"hour_of_day": 24, "weekday": 7},
    )
