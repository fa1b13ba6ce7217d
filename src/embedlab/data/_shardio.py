"""The CTR shards folder on disk: its manifest, what in it is ours, and checks of its files.

Layout (format ``embedlab-ctr-shards``, version 1)::

    DIR/
      manifest.json            fields, splits, shard and vocabulary files (rows, bytes, XXH3-128)
      .embedlab-shards         owner marker, written first
      train/part-00000.parquet ...   one Parquet file per shard: a column per field (ids,
      valid/part-00000.parquet ...   int32 or int64), ``label`` (float32), dense columns
      test/part-00000.parquet  ...   (float32); row groups of ``row_group_rows`` rows
      vocab/field-000.parquet  ...   per field: ``key`` (uint64), ``count`` (int64) in id order

``prepare`` writes all of it into a temporary sibling folder and renames it into
place; a folder is replaced (``force``) only if everything in it is ours.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedlab._io import canonical_checksum, fsync_dir
from embedlab.data._keys import SPLITS
from embedlab.fields import Field

__all__ = [
    "FORMAT",
    "MANIFEST",
    "MARKER",
    "VERSION",
    "FileInfo",
    "Manifest",
    "VocabInfo",
    "new_folder",
    "publish_folder",
    "read_manifest",
    "shard_name",
    "vocab_name",
]

FORMAT = "embedlab-ctr-shards"
VERSION = 1
MANIFEST = "manifest.json"
MARKER = ".embedlab-shards"
LABEL = "label"
_SHARD = re.compile(r"^part-[0-9]{5}\.parquet$")
_VOCAB = re.compile(r"^field-[0-9]{3}\.parquet$")
_HEX = re.compile(r"^[0-9a-f]{32}$")


def shard_name(split: str, index: int) -> str:
    return f"{split}/part-{index:05d}.parquet"


def vocab_name(field_index: int) -> str:
    return f"vocab/field-{field_index:03d}.parquet"


@dataclass(frozen=True)
class FileInfo:
    """One file of the folder as the manifest records it."""

    file: str
    rows: int
    bytes: int
    xxh3_128: str


@dataclass(frozen=True)
class VocabInfo(FileInfo):
    """A field's vocabulary file: key ``i`` of the file has id ``i + offset``."""

    offset: int = 1
    order: str = "count"
    oov_values: int = 0
    oov_rows: int = 0


@dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json``; ``vocabs[j]`` is None for a fixed field (ids as read)."""

    fields: tuple[Field, ...]
    dense: tuple[str, ...]
    shards: dict[str, tuple[FileInfo, ...]]
    vocabs: tuple[VocabInfo | None, ...]
    name: str
    doc: dict[str, Any]

    def n_rows(self, split: str) -> int:
        return sum(s.rows for s in self.shards[split])

    @property
    def columns(self) -> list[str]:
        """The column names of every shard, in order."""
        return [f.name for f in self.fields] + [LABEL, *self.dense]


# ------------------------------------------------------------------ reading the manifest
def _get(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError(f"{where}: {key!r} must be a {_kind_name(kind)}, got {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        {"str": "string", "int": "integer", "dict": "mapping"}.get(k.__name__, k.__name__)
        for k in kinds
    )


def _file_info(entry: Any, where: str, folder: str | None) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: a file entry must be a mapping, got {entry!r}")
    name = _get(entry, "file", str, where)
    top, _, base = name.partition("/")
    pattern = _VOCAB if folder == "vocab" else _SHARD
    if top != folder or not pattern.match(base):
        raise ValueError(
            f"{where}: file names must look like {folder}/<name>.parquet, got {name!r}"
        )
    rows = _get(entry, "rows", int, where)
    size = _get(entry, "bytes", int, where)
    digest = _get(entry, "xxh3_128", str, where)
    if rows < 0 or size < 0 or not _HEX.match(digest):
        raise ValueError(f"{where}: bad rows, bytes or xxh3_128 in the entry of {name!r}")
    return {"file": name, "rows": rows, "bytes": size, "xxh3_128": digest}


def read_manifest(root: Path) -> Manifest:
    """Parse and check ``root/manifest.json`` (format, version, self-checksum, entries).

    Raises:
        ValueError: ``root`` is not a shards folder, or its manifest is corrupt,
            altered, or of another version (the message names the file and the entry).
    """
    path = root / MANIFEST
    if not root.is_dir():
        raise ValueError(f"shards folder {root} does not exist or is not a folder")
    if not path.is_file():
        raise ValueError(
            f"{root} is not a CTR shards folder: it has no {MANIFEST} "
            "(write one with `embedlab data prepare`)"
        )
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is corrupted: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{path} is not a CTR shards manifest (format != {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise ValueError(
            f"{path} has format version {doc.get('version')!r}; "
            f"this embedlab reads version {VERSION}"
        )
    if doc.get("checksum") != canonical_checksum(doc):
        raise ValueError(
            f"{path} is corrupted or was altered: its checksum does not match its content"
        )
    where = str(path)
    fields: list[Field] = []
    vocabs: list[VocabInfo | None] = []
    for j, entry in enumerate(_get(doc, "fields", list, where)):
        at = f"{where} fields[{j}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{at}: must be a mapping, got {entry!r}")
        fields.append(Field(_get(entry, "name", str, at), _get(entry, "cardinality", int, at)))
        vocab = entry.get("vocab")
        if vocab is None:
            vocabs.append(None)
            continue
        info = _file_info(vocab, at, "vocab")
        extra = {k: _get(vocab, k, int, at) for k in ("offset", "oov_values", "oov_rows")}
        order = _get(vocab, "order", str, at)
        if info["rows"] + extra["offset"] != fields[-1].cardinality:
            raise ValueError(
                f"{at}: the vocabulary of field {fields[-1].name!r} has {info['rows']} values "
                f"(+{extra['offset']} out-of-vocabulary id) but the cardinality is "
                f"{fields[-1].cardinality}"
            )
        vocabs.append(VocabInfo(**info, **extra, order=order))
    if not fields:
        raise ValueError(f"{where}: 'fields' must list at least one field")
    dense = tuple(str(d) for d in _get(doc, "dense", list, where))
    names = [f.name for f in fields] + [LABEL, *dense]
    if len(set(names)) != len(names):
        raise ValueError(
            f"{where}: field, label and dense column names must be unique, got {names}"
        )
    shard_doc = _get(doc, "shards", dict, where)
    shards: dict[str, tuple[FileInfo, ...]] = {}
    for split in SPLITS:
        entries = shard_doc.get(split)
        if not isinstance(entries, list):
            raise ValueError(
                f"{where}: 'shards' must have a list for split {split!r}, got {entries!r}"
            )
        shards[split] = tuple(
            FileInfo(**_file_info(e, f"{where} shards[{split!r}][{i}]", split))
            for i, e in enumerate(entries)
        )
    name = str(doc.get("name", "shards"))
    return Manifest(tuple(fields), dense, shards, tuple(vocabs), name, doc)


# ------------------------------------------------------------------ the output folder
def _owned(root: Path, entry: Path) -> bool:
    """Whether ``entry`` (directly in ``root``) is a file or folder prepare writes."""
    if entry.is_symlink():
        return False
    if entry.name in (MANIFEST, MARKER):
        return entry.is_file()
    if entry.name in (*SPLITS, "vocab") and entry.is_dir():
        pattern = _VOCAB if entry.name == "vocab" else _SHARD
        return all(
            p.is_file() and not p.is_symlink() and pattern.match(p.name) for p in entry.iterdir()
        )
    return False


def _is_shards_folder(root: Path) -> bool:
    if (root / MARKER).is_file():
        return True
    try:
        doc = json.loads((root / MANIFEST).read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def check_target(out: Path, *, force: bool) -> None:
    """Refuse an output that is not absent, an empty folder, or (with ``force``) ours."""
    if not out.exists():
        return
    if not out.is_dir() or out.is_symlink():
        raise ValueError(f"output path {out} must be a folder, got a file")
    entries = sorted(out.iterdir())
    if not entries:
        return
    if not _is_shards_folder(out):
        shown = ", ".join(p.name for p in entries[:5]) + (" ..." if len(entries) > 5 else "")
        raise ValueError(
            f"refusing to write shards into {out}: it is a non-empty folder that is not an "
            f"embedlab shards folder (it holds {shown}); choose a new or empty folder"
        )
    if not force:
        raise ValueError(
            f"output folder {out} already holds embedlab shards; pass force=True "
            "(--force on the command line) to replace them"
        )
    foreign = [p.name for p in entries if not _owned(out, p)]
    if foreign:
        raise ValueError(
            f"refusing to replace {out}: it holds files embedlab did not write "
            f"({', '.join(foreign[:5])}); move them away first"
        )


def _siblings(out: Path, kind: str) -> Iterator[Path]:
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.{kind}-[0-9a-f]{{8}}$")
    if out.parent.is_dir():
        for p in out.parent.iterdir():
            if pattern.match(p.name) and p.is_dir() and not p.is_symlink():
                yield p


def new_folder(out: Path, *, force: bool) -> Path:
    """A fresh temporary folder next to ``out`` (with our marker) after checking ``out``.

    Temporary folders of an earlier run that was killed are removed (only ours); an
    old folder left between the two renames of an earlier replace is put back.
    """
    for old in _siblings(out, "old"):
        if not out.exists() and (old / MARKER).is_file():
            os.rename(old, out)
        elif (old / MARKER).is_file():
            shutil.rmtree(old, ignore_errors=True)
    for tmp in _siblings(out, "prepare"):
        if (tmp / MARKER).is_file() or not any(tmp.iterdir()):
            shutil.rmtree(tmp, ignore_errors=True)
    check_target(out, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.prepare-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    (tmp / MARKER).write_bytes(b"")
    return tmp


def publish_folder(tmp: Path, out: Path, *, force: bool) -> None:
    """Rename the finished ``tmp`` to ``out``; an old shards folder there is replaced."""
    check_target(out, force=force)  # again: the folder may have changed meanwhile
    fsync_dir(tmp)
    if out.exists() and any(out.iterdir()):
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
        os.rename(tmp, out)
        fsync_dir(out.parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            out.rmdir()
        os.rename(tmp, out)
    fsync_dir(out.parent)


def write_manifest(folder: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` (with its self-checksum) as ``folder/manifest.json``."""
    doc = {"format": FORMAT, "version": VERSION, **doc}
    doc["checksum"] = canonical_checksum(doc)
    path = folder / MANIFEST
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
