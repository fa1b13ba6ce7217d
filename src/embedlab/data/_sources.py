"""Data specs (``"synthetic"``, ``"frappe:PATH"``, ...) -> train / valid / test splits.

The ``name:PATH`` form is parsed here and only here (:func:`parse_data_spec`);
each source is one entry of :data:`DATA_SOURCES`.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedlab._registry import Registry, parse_spec
from embedlab._validation import check_int
from embedlab.data._dataset import CTRDataset, CTRSplits
from embedlab.data._encode import check_path
from embedlab.data._keys import SPLITS
from embedlab.data.avazu import load_avazu
from embedlab.data.criteo import load_criteo
from embedlab.data.csvlog import load_csv
from embedlab.data.libfm import load_libfm
from embedlab.data.movielens import load_movielens
from embedlab.data.sequences import load_movielens_sequences, make_sequence_ctr, temporal_split
from embedlab.data.synthetic import make_ctr
from embedlab.fields import Field

__all__ = [
    "DATA_SOURCES",
    "FRAPPE_FIELDS",
    "DataSource",
    "find_role_files",
    "frappe_files",
    "load_ctr",
    "parse_data_spec",
]

FRAPPE_FIELDS: tuple[str, ...] = (
    "user",
    "item",
    "daytime",
    "weekday",
    "isweekend",
    "homework",
    "cost",
    "weather",
    "country",
    "city",
)
_FRACTIONS = (0.8, 0.1, 0.1)
_ROLES = ("train", "valid", "test")

Loader = Callable[..., CTRSplits]


@dataclass(frozen=True)
class DataSource:
    """One registered source: ``load(path, *, seed, **options) -> CTRSplits``.

    Args:
        load: builds the splits; ``path`` is ``None`` for sources without data files.
        needs_path: whether the spec must be ``name:PATH``.
        summary: one line for help texts.
        options: the keyword options ``load`` accepts besides ``seed``.
    """

    load: Loader
    needs_path: bool
    summary: str
    options: tuple[str, ...] = ()


DATA_SOURCES: Registry[DataSource] = Registry("data source")


def _keywords(
    fn: Callable[..., Any], drop: Iterable[str] = ("path", "seed", "name")
) -> tuple[str, ...]:
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = inspect.signature(fn).parameters.values()
    names = {p.name for p in params if p.kind in kinds}
    return tuple(sorted(names - set(drop)))


def _register(
    name: str, *, needs_path: bool, summary: str, options_of: Callable[..., Any] | None = None
) -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        options = _keywords(options_of) if options_of is not None else _keywords(fn)
        DATA_SOURCES.register(name)(DataSource(fn, needs_path, summary, options))
        return fn

    return deco


_DATA_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*(\(.*\))?\s*(:.*)?$", re.DOTALL)


def split_data_spec(spec: str) -> tuple[str, dict[str, Any], Path | None]:
    """Split ``"name"``, ``"name:PATH"`` or ``"name(key=value, ...)[:PATH]"`` into the source
    name, its options (the spec grammar of :func:`embedlab._registry.parse_spec`) and the path.

    Example:
        >>> split_data_spec("synthetic(n_samples=5000, cardinalities=[100, 20])")
        ('synthetic', {'n_samples': 5000, 'cardinalities': [100, 20]}, None)
    """
    m = _DATA_SPEC.match(spec) if isinstance(spec, str) else None
    if m is None:
        raise ValueError(
            f"data spec must look like name, name:PATH or name(key=value, ...):PATH, got {spec!r}"
        )
    name = m.group(1).strip().replace("-", "_")  # "movielens-seq" is "movielens_seq"
    DATA_SOURCES.get(name)  # unknown name: the error lists the valid ones
    options = parse_spec(name + m.group(2))[1] if m.group(2) else {}
    rest = m.group(3)
    if rest is not None and not rest[1:].strip():
        raise ValueError(f"data spec must give a path after ':', got {spec!r}")
    return name, options, (Path(rest[1:].strip()).expanduser() if rest else None)


def parse_data_spec(spec: str) -> tuple[str, Path | None]:
    """Split ``"name"`` or ``"name:PATH"`` into the source name and the path (options, if
    any, are dropped: see :func:`split_data_spec`).

    Raises:
        ValueError: an empty spec, ``"name:"`` with no path, or an unknown name
            (the message lists the valid names).

    Example:
        >>> parse_data_spec("frappe:/data/frappe")
        ('frappe', PosixPath('/data/frappe'))
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"data spec must look like name or name:PATH, got {spec!r}")
    name, _, path = split_data_spec(spec)
    return name, path


def load_ctr(spec: str, *, seed: int = 0, **options: Any) -> CTRSplits:
    """Load the CTR data named by ``spec`` as train / valid / test splits.

    Sources (see :data:`DATA_SOURCES`):

    - ``synthetic``: :func:`~embedlab.data.make_ctr` (options are its
      arguments, ``n_samples=100_000`` by default), split 80/10/10 by ``seed``.
    - ``frappe:DIR``: the protocol we benchmark. Train and valid are
      ``frappe.validation.libfm`` split 90/10 by ``seed``, test is
      ``frappe.test.libfm``; one vocabulary over both files. If ``DIR`` also
      holds ``frappe.train.libfm`` the three files are used as given. A single
      libFM file is split 80/10/10.
    - ``libfm:PATH``: one file split 80/10/10, or a directory with one
      ``*train*``, one ``*valid*`` and one ``*test*`` file used as given.
    - ``criteo:PATH``, ``avazu:PATH``, ``csv:PATH``, ``movielens:PATH``: split
      80/10/10 by ``seed``; options go to the loader (``min_count``, ``max_rows``,
      ``label``, ...).
    - ``shards:DIR``: a folder written by ``embedlab data prepare``, its three
      splits loaded into memory as prepared (``seed`` unused). For data that does
      not fit in memory use :class:`~embedlab.data.CTRShards` and ``iter_batches``.
      MovieLens is split at random, not by time: the benchmark compares
      embedding tables on one shared split, where a random split is the
      common protocol (FuxiCTR / BARS) and keeps every user in train.
    - ``synthetic-seq``, ``movielens-seq:DIR``: behaviour-sequence data (each
      row carries the user's previous items as ``history``, and ``groups`` for
      gAUC), split per user in time by :func:`~embedlab.data.temporal_split`
      (each user's last 10% of rows is test, the 10% before valid; ``seed`` is
      unused). ``synthetic-seq`` is :func:`~embedlab.data.make_sequence_ctr`;
      ``movielens-seq`` is :func:`~embedlab.data.load_movielens_sequences`
      (options ``max_len``, ``valid_fraction``, ``test_fraction``). Hyphens in a
      source name are read as underscores (``movielens_seq`` is the same source).

    Every split has ``name`` set to the source name.

    Args:
        spec: ``"name"``, ``"name:PATH"`` or ``"name(key=value, ...)[:PATH]"`` with the
            source's options in the spec (``synthetic(n_samples=5000, zipf_exponent=0.8)``).
        seed: seeds every random split; the same seed gives the same split.
        **options: keyword options of the source (override the spec's).

    Example:
        >>> splits = load_ctr("synthetic", n_samples=2000, seed=0)
        >>> len(splits.train), len(splits.valid), len(splits.test), splits.name
        (1600, 200, 200, 'synthetic')
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"data spec must look like name or name:PATH, got {spec!r}")
    name, spec_options, path = split_data_spec(spec)
    options = {**spec_options, **options}
    source = DATA_SOURCES.get(name)
    seed = check_int("seed", seed, min_value=0)
    if source.needs_path and path is None:
        raise ValueError(f"data source {name!r} needs a path: use {name}:PATH, got {spec!r}")
    if not source.needs_path and path is not None:
        raise ValueError(f"data source {name!r} takes no path, got {spec!r}")
    for key in options:
        if key not in source.options:
            raise ValueError(
                f"unknown option {key!r} for data source {name!r}; "
                f"valid options: {', '.join(source.options) or 'none'}"
            )
    if path is not None:
        path = check_path(path)
    return source.load(path, seed=seed, **options)


def _random_split(ds: CTRDataset, seed: int) -> CTRSplits:
    return ds.split(_FRACTIONS, seed=seed)


def _with_frappe_fields(ds: CTRDataset, path: Path) -> CTRDataset:
    if ds.n_fields != len(FRAPPE_FIELDS):
        raise ValueError(
            f"frappe lines must have {len(FRAPPE_FIELDS)} features "
            f"({', '.join(FRAPPE_FIELDS)}), got {ds.n_fields} in {path}"
        )
    fields = tuple(Field(n, f.cardinality) for n, f in zip(FRAPPE_FIELDS, ds.fields, strict=True))
    return dataclasses.replace(ds, fields=fields)


@_register("synthetic", needs_path=False, summary="planted-FM click log", options_of=make_ctr)
def _synthetic(path: Path | None, *, seed: int, **options: Any) -> CTRSplits:
    options.setdefault("n_samples", 100_000)
    return _random_split(make_ctr(seed=seed, **options), seed)


def frappe_files(path: Path) -> list[Path]:
    """``frappe.train.libfm`` (if present), ``frappe.validation.libfm``, ``frappe.test.libfm``."""
    files = {role: path / f"frappe.{role}.libfm" for role in ("train", "validation", "test")}
    missing = [f.name for role, f in files.items() if role != "train" and not f.is_file()]
    if missing:
        raise ValueError(
            f"a frappe directory must hold frappe.validation.libfm and frappe.test.libfm, "
            f"missing {', '.join(missing)} in {path}"
        )
    return [f for f in files.values() if f.is_file()]


@_register("frappe", needs_path=True, summary="Frappe app usage (libFM files)")
def _frappe(path: Path, *, seed: int) -> CTRSplits:
    if path.is_file():
        (ds,) = load_libfm([path], name="frappe")
        return _random_split(_with_frappe_fields(ds, path), seed)
    files = frappe_files(path)
    if len(files) == 3:
        parts = load_libfm(files, name="frappe")
        train, valid, test = (_with_frappe_fields(ds, path) for ds in parts)
        return CTRSplits(train=train, valid=valid, test=test)
    trainvalid, test = (_with_frappe_fields(ds, path) for ds in load_libfm(files, name="frappe"))
    train, valid = trainvalid.split_two(0.9, seed=seed)
    return CTRSplits(train=train, valid=valid, test=test)


def find_role_files(path: Path) -> list[Path]:
    """The ``*train*``, ``*valid*`` and ``*test*`` files of a directory, in that order."""
    files = sorted(f for f in path.iterdir() if f.is_file() and not f.name.startswith("."))
    found: list[Path] = []
    for role in _ROLES:
        hits = [f for f in files if role in f.name.lower()]
        if len(hits) != 1:
            raise ValueError(
                f"a libfm directory must hold exactly one file with {role!r} in its name, "
                f"got {len(hits)} in {path}: {', '.join(f.name for f in hits) or 'none'}"
            )
        found.append(hits[0])
    return found


@_register("libfm", needs_path=True, summary="libFM file (split 80/10/10) or train/valid/test dir")
def _libfm(path: Path, *, seed: int) -> CTRSplits:
    if path.is_file():
        (ds,) = load_libfm([path], name="libfm")
        return _random_split(ds, seed)
    train, valid, test = load_libfm(find_role_files(path), name="libfm")
    return CTRSplits(train=train, valid=valid, test=test)


@_register("criteo", needs_path=True, summary="Criteo TSV/CSV", options_of=load_criteo)
def _criteo(path: Path, *, seed: int, **options: Any) -> CTRSplits:
    return _random_split(load_criteo(path, name="criteo", **options), seed)


@_register("avazu", needs_path=True, summary="Avazu CSV", options_of=load_avazu)
def _avazu(path: Path, *, seed: int, **options: Any) -> CTRSplits:
    return _random_split(load_avazu(path, name="avazu", **options), seed)


@_register("csv", needs_path=True, summary="CSV click log with a header", options_of=load_csv)
def _csv(path: Path, *, seed: int, **options: Any) -> CTRSplits:
    return _random_split(load_csv(path, name="csv", **options), seed)


@_register("shards", needs_path=True, summary="folder of `embedlab data prepare` (its own split)")
def _shards(path: Path, *, seed: int) -> CTRSplits:
    """The three splits of a prepared folder, loaded into memory: a small-data convenience.

    ``seed`` is unused: the split was fixed by ``prepare``. Large data should be read
    lazily with :meth:`~embedlab.data.CTRShards.iter_batches` instead.
    """
    from embedlab.data.ctr_shards import CTRShards  # torch: loaded when a shard source is read

    shards = CTRShards(path)
    return CTRSplits(*(shards.to_memory(s) for s in SPLITS))


@_register("movielens", needs_path=True, summary="MovieLens ratings (>= 4 is a click)")
def _movielens(path: Path, *, seed: int) -> CTRSplits:
    return _random_split(load_movielens(path, name="movielens"), seed)


@_register(
    "synthetic_seq",
    needs_path=False,
    summary="planted behaviour sequences (click ~ similarity to history)",
    options_of=make_sequence_ctr,
)
def _synthetic_seq(path: Path | None, *, seed: int, **options: Any) -> CTRSplits:
    return temporal_split(make_sequence_ctr(seed=seed, **options))


@_register(
    "movielens_seq",
    needs_path=True,
    summary="MovieLens ratings with each user's previous movies (time split per user)",
    options_of=load_movielens_sequences,
)
def _movielens_seq(path: Path, *, seed: int, **options: Any) -> CTRSplits:
    return load_movielens_sequences(path, name="movielens-seq", **options)
