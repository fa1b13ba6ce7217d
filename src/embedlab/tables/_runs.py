"""Rebuild the trained table of a training run folder (``config.json`` + ``model.safetensors``).

A run folder holds ``config.json`` and ``model.safetensors`` (the model's state dict,
the table's weights under ``table.``). The config names the table and its data:

.. code-block:: json

    {"fields": [["user", 957], ["item", 4082]], "model": "deepfm",
     "method": "qr(op=add)", "compression": 100, "dim": 16, "seed": 0}

``fields`` may also be a list of ``{"name": ..., "cardinality": ...}``; ``table`` is
accepted for ``method`` and ``embedding_dim`` for ``dim``; optional ``table_kwargs``
holds extra hyper-parameters. Nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from embedlab.fields import Field
from embedlab.tables._base import EmbeddingTable
from embedlab.tables._registry import make_table

__all__ = ["table_from_run"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TABLE_PREFIX = "table."


def _fields(raw: Any, where: Path) -> list[Field]:
    out = []
    for f in raw if isinstance(raw, list) else []:
        if isinstance(f, dict):
            out.append(Field(str(f.get("name")), int(f.get("cardinality", 0))))
        elif isinstance(f, list) and len(f) == 2:
            out.append(Field(str(f[0]), int(f[1])))
        else:
            raise ValueError(f"{where}: 'fields' entries must be [name, cardinality], got {f!r}")
    if not out:
        raise ValueError(f"{where}: 'fields' must be a non-empty list, got {raw!r}")
    return out


def table_from_run(path: str | os.PathLike[str]) -> EmbeddingTable:
    """The trained table of a run folder, or of a ``model.safetensors`` next to its ``config.json``.

    Raises:
        FileNotFoundError: the config or the weights are missing.
        ValueError: the config misses a key, or the weights do not fit the table.
    """
    import safetensors.torch

    path = Path(path)
    folder, weights = (path, path / WEIGHTS_NAME) if path.is_dir() else (path.parent, path)
    config_path = folder / CONFIG_NAME
    for p in (config_path, weights):
        if not p.is_file():
            raise FileNotFoundError(f"run file does not exist: {p}")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{config_path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: must hold a JSON object, got {type(config).__name__}")
    spec = config.get("method", config.get("table"))
    dim: Any = config.get("dim", config.get("embedding_dim"))
    for key, value in (("method", spec), ("dim", dim), ("compression", config.get("compression"))):
        if value is None:
            raise ValueError(f"{config_path}: must have the key {key!r}, got keys {sorted(config)}")
    table = make_table(
        str(spec),
        _fields(config.get("fields"), config_path),
        int(dim),
        compression=float(config["compression"]),
        seed=int(config.get("seed", 0)),
        **dict(config.get("table_kwargs", {})),
    )
    try:
        state = safetensors.torch.load_file(str(weights))
    except Exception as exc:  # safetensors' own error type for corrupt files
        raise ValueError(f"{weights}: not a readable safetensors file ({exc})") from None
    sub = {k[len(TABLE_PREFIX) :]: v for k, v in state.items() if k.startswith(TABLE_PREFIX)}
    if not sub:
        raise ValueError(
            f"{weights}: must hold the table's weights under {TABLE_PREFIX!r}, got none"
        )
    try:
        table.load_state_dict(sub)
    except RuntimeError as exc:
        raise ValueError(f"{weights}: the table weights do not fit {spec}: {exc}") from None
    return table
