"""Deployable tables: one safetensors file per trained table, read back as an inference module.

File format (``format_version`` 1):

- tensors: one flat tensor per storage dtype (``"f32"``, ``"u8"``, ...), the method's
  deployable tensors concatenated in layout order (safetensors spends ~60 bytes of header
  per tensor, so a few blobs keep the file within 5% + 1 KB of ``memory_bytes()``);
- metadata: ``format = "embedlab.table"``, ``format_version``, and ``header``, compact
  JSON with the method, embedlab version, fields, dim, compression, seed, the keyword
  hyper-parameters, the method's learned structure, the layout ``[name, dtype, shape]``
  of every tensor and a CRC-32 of the blobs.

Loading (:func:`load_exported`) checks every piece (format marker, version, method,
fields, blob sizes against the layout, checksum, then the method's own shape and range
rules, e.g. pointers below the number of rows) and uses no pickle. Errors name the
file, the field, the rule and the value.

Every registered method exports and its inference module (:class:`ExportedTable`) gives
bit-identical outputs to the trained table in eval mode. Its forward has no data-dependent
control flow (the id checks are off unless ``set_validation(True)``), so
``torch.export.export(module, (ids,))`` and ``torch.compile(module, fullgraph=True)``
trace all 21 methods; no method is left out (measured with torch 2.13 in
``benchmarks/table_export.py`` and ``tests/tables/test_export.py``). The *training* tables
trace too once ``set_validation(False)`` (``dpq`` / ``mgqe`` through ``torch.unique``'s
unbacked output size), in eval mode; ``adaemb`` in train mode registers a gradient hook.
A ``"state"`` table (its persistent state is its deployable form: full, hash, qr, ue, mde,
tt, dhe, robe) stores no layout: its class, rebuilt from the header, knows every name and
shape.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from embedlab._io import atomic_write_bytes
from embedlab._validation import check_ids_in_range, check_ids_tensor
from embedlab.fields import Field
from embedlab.tables._base import EmbeddingTable
from embedlab.tables._export_util import DTYPE_NAMES, ExportCheck, ExportConfig, split_blobs
from embedlab.tables._registry import TABLES

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ExportCheck",
    "ExportConfig",
    "ExportedTable",
    "export_info",
    "export_table",
    "load_exported",
]

FORMAT = "embedlab.table"
FORMAT_VERSION = 1


class ExportedTable(nn.Module):
    """An exported table loaded for inference: ``forward(ids)`` as the trained table in eval mode.

    Eval only (``train()`` keeps it in eval mode, no parameter requires a gradient) and
    without id checks by default, so ``torch.export`` / ``torch.compile(fullgraph=True)``
    trace it; ``set_validation(True)`` turns the checks of the training table back on.

    Attributes:
        config: the file's header (method, fields, dim, compression, seed, ...).
        inner: the method's inference module.

    Shapes:
        ids ``(batch, n_fields)`` int64 / int32 -> ``(batch, n_fields, dim)`` float32.

    Example:
        >>> import torch, tempfile, os
        >>> from embedlab.tables import Field, make_table, load_exported
        >>> fields = [Field("user", 957), Field("item", 4082)]
        >>> table = make_table("hash", fields, 16, compression=10)
        >>> path = os.path.join(tempfile.mkdtemp(), "table.safetensors")
        >>> module = load_exported(table.export(path))
        >>> ids = torch.tensor([[3, 4000]])
        >>> torch.equal(module(ids), table.eval()(ids))
        True
    """

    def __init__(self, inner: nn.Module, config: ExportConfig, deployable_bytes: int) -> None:
        super().__init__()
        self.inner = inner.requires_grad_(False)
        self.config = config
        self.deployable_bytes = deployable_bytes
        self.strict_ids = TABLES.get(config.method).strict_ids
        self.validate_ids = False
        super().train(False)

    @property
    def method(self) -> str:
        """The registry name of the table's method, from the file's header."""
        return self.config.method

    @property
    def fields(self) -> tuple[Field, ...]:
        """The fields, in column order, from the file's header."""
        return self.config.fields

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return self.config.dim

    @property
    def n_fields(self) -> int:
        """Number of fields (columns of ``ids``)."""
        return len(self.config.fields)

    def memory_bytes(self) -> int:
        """Bytes of the deployable tensors in the file (what the table's ``memory_bytes`` said)."""
        return self.deployable_bytes

    def set_validation(self, on: bool) -> ExportedTable:
        """Turn the per-forward id checks on or off; returns self."""
        self.validate_ids = bool(on)
        return self

    def train(self, mode: bool = True) -> ExportedTable:
        """Inference only: the module stays in eval mode."""
        return super().train(False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.validate_ids:
            check_ids_tensor(ids, self.n_fields)
            if self.strict_ids:
                cards = self.config.cardinalities
                check_ids_in_range(ids, cards, [f.name for f in self.config.fields])
        out: torch.Tensor = self.inner(ids.to(torch.int64))
        return out

    def extra_repr(self) -> str:
        return f"method={self.method!r}, n_fields={self.n_fields}, dim={self.dim}"


# --- writing ------------------------------------------------------------------------
def _jsonable(value: Any, where: str) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where} must be JSON numbers, strings, booleans or lists, got {value!r}")


def _blob_bytes(blobs: Mapping[str, torch.Tensor]) -> int:
    crc = 0
    for name in sorted(blobs):
        crc = zlib.crc32(blobs[name].contiguous().view(torch.uint8).numpy().tobytes(), crc)
    return crc


def export_table(table: EmbeddingTable, path: str | os.PathLike[str]) -> Path:
    """Write ``table``'s deployable form to ``path`` atomically (:meth:`EmbeddingTable.export`)."""
    import safetensors.torch

    phase = table._pending_phase()
    if phase is not None:
        raise ValueError(
            f"{table.name} cannot be exported before its {phase!r} phase has ended "
            f"(phases: {', '.join(table.phases)}); train it through its phases "
            f"(CTRTrainer.fit) or call end_phase({phase!r}) first"
        )
    with torch.no_grad():
        tensors, structure = table._export_tensors()
    layout: list[list[Any]] = []
    parts: dict[str, list[torch.Tensor]] = {}
    for name, t in tensors.items():
        if t.dtype not in DTYPE_NAMES:
            raise TypeError(f"export tensor {name!r} has unsupported dtype {t.dtype}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(
                f"{table.name} cannot be exported: tensor {name!r} must be finite, "
                f"got {int((~torch.isfinite(t)).sum())} non-finite values"
            )
        layout.append([name, DTYPE_NAMES[t.dtype], list(t.shape)])  # (not kept for "state")
        parts.setdefault(DTYPE_NAMES[t.dtype], []).append(t.detach().cpu().reshape(-1))
    blobs = {k: torch.cat(v).contiguous() for k, v in parts.items()}
    from embedlab import __version__

    header = {
        "method": table.name,
        "embedlab": __version__,
        "fields": [[f.name, f.cardinality] for f in table.fields],
        "dim": table.dim,
        "compression": table.compression,
        "seed": table.seed,
        "hyper": _jsonable(table.hyper_parameters(), "hyper-parameters"),
        "structure": _jsonable(structure, "export structure"),
        # a "state" table is rebuilt by its class, which knows every name and shape
        "layout": None if table.export_format == "state" else layout,
        "crc32": _blob_bytes(blobs),
    }
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "header": json.dumps(header, separators=(",", ":")),
    }
    return atomic_write_bytes(path, safetensors.torch.save(blobs, metadata=metadata))


# --- reading ------------------------------------------------------------------------
def _read(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor], ExportCheck]:
    """Header and blobs of an exported file, with the format checks that need no method."""
    from safetensors import safe_open

    check = ExportCheck(str(path))
    if not path.is_file():
        raise FileNotFoundError(f"exported table does not exist: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:  # type: ignore[no-untyped-call]
            metadata = fh.metadata() or {}
            blobs = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open is no mapping
    except Exception as exc:  # safetensors raises its own error type for corrupt files
        raise ValueError(f"{path}: not a readable safetensors file ({exc})") from None
    check.require(
        metadata.get("format") == FORMAT,
        "metadata 'format'",
        f"be {FORMAT!r}",
        metadata.get("format"),
    )
    version = metadata.get("format_version")
    check.require(
        version == str(FORMAT_VERSION), "metadata 'format_version'", f"be {FORMAT_VERSION}", version
    )
    try:
        header = json.loads(metadata.get("header", ""))
    except json.JSONDecodeError as exc:
        raise check.error("metadata 'header'", "be JSON", f"invalid JSON ({exc})") from None
    check.require(
        isinstance(header, dict), "metadata 'header'", "be a JSON object", type(header).__name__
    )
    crc = _blob_bytes(blobs)
    check.require(
        crc == header.get("crc32"), "the data checksum (crc32)", f"be {header.get('crc32')}", crc
    )
    return header, blobs, check


def _config(header: Mapping[str, Any], check: ExportCheck) -> ExportConfig:
    method = header.get("method")
    check.require(
        method in TABLES.names(),
        "header 'method'",
        f"be one of {', '.join(TABLES.names())}",
        method,
    )
    raw: Any = header.get("fields")
    ok = (
        isinstance(raw, list)
        and bool(raw)
        and all(
            isinstance(f, list) and len(f) == 2 and isinstance(f[0], str) and isinstance(f[1], int)
            for f in raw
        )
    )
    check.require(ok, "header 'fields'", "be a non-empty list of [name, cardinality]", raw)
    try:
        fields = tuple(Field(name, card) for name, card in raw)
    except (TypeError, ValueError) as exc:
        raise check.error("header 'fields'", "hold valid fields", str(exc)) from None
    dim: Any = header.get("dim")
    seed: Any = header.get("seed")
    check.require(isinstance(dim, int) and dim >= 1, "header 'dim'", "be an integer >= 1", dim)
    check.require(isinstance(seed, int) and seed >= 0, "header 'seed'", "be an integer >= 0", seed)
    compression: Any = header.get("compression")
    check.require(
        isinstance(compression, (int, float)) and compression >= 1,
        "header 'compression'",
        "be a number >= 1",
        compression,
    )
    hyper, structure = header.get("hyper", {}), header.get("structure", {})
    check.require(isinstance(hyper, dict), "header 'hyper'", "be a JSON object", hyper)
    check.require(isinstance(structure, dict), "header 'structure'", "be a JSON object", structure)
    return ExportConfig(
        str(method), fields, int(dim), float(compression), int(seed), hyper, structure
    )


def _unpack(
    header: Mapping[str, Any], blobs: Mapping[str, torch.Tensor], check: ExportCheck
) -> dict[str, torch.Tensor]:
    """The named tensors of the layout; the blobs themselves for a ``"state"`` table
    (no layout: its rebuilt class knows the names and shapes, see ``_from_export``)."""
    layout: Any = header.get("layout")
    if layout is None:
        return split_blobs(blobs, [[k, k, [v.numel()]] for k, v in blobs.items()], check)
    check.require(isinstance(layout, list), "header 'layout'", "be a list", type(layout).__name__)
    return split_blobs(blobs, layout, check)


def load_exported(path: str | os.PathLike[str]) -> ExportedTable:
    """Load a file written by :meth:`EmbeddingTable.export` as an inference module.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not an exported table or breaks one of its rules (the
            message names the file, the field, the rule and the value).
    """
    path = Path(path)
    header, blobs, check = _read(path)
    config = _config(header, check)
    tensors = _unpack(header, blobs, check)
    cls = TABLES.get(config.method)
    try:
        inner = cls._from_export(config, tensors, check)
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: cannot rebuild the {config.method} table: {exc}") from None
    nbytes = sum(t.numel() * t.element_size() for t in tensors.values())
    return ExportedTable(inner, config, nbytes)


def export_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Method, fields, dim and byte counts of an exported file (checked as on load)."""
    path = Path(path)
    header, blobs, check = _read(path)
    config = _config(header, check)
    tensors = _unpack(header, blobs, check)
    return {
        "method": config.method,
        "fields": [[f.name, f.cardinality] for f in config.fields],
        "dim": config.dim,
        "compression": config.compression,
        "seed": config.seed,
        "hyper": config.hyper,
        "file_bytes": path.stat().st_size,
        "deployable_bytes": sum(t.numel() * t.element_size() for t in tensors.values()),
        "full_bytes": sum(config.cardinalities) * config.dim * 4,
        "tensors": {
            k: [str(t.dtype).removeprefix("torch."), list(t.shape)] for k, t in tensors.items()
        },
        "embedlab": header.get("embedlab"),
    }
