"""The benchmark record: one measured run, one JSON object per line of a ``.jsonl`` file.

Reading and appending files of records is in :mod:`embedlab.bench._records_io`; the
documented keys are in :mod:`embedlab.bench._schema`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["BenchRecord", "config_hash"]

_REQUIRED = ("suite", "dataset", "method")


@dataclass
class BenchRecord:
    """One run of (suite, dataset, model, method, compression, seed).

    ``status`` is ``"ok"`` for a measured run and ``"infeasible"`` when the
    method cannot reach the budget (``error`` says why); infeasible runs have
    empty ``metrics``. ``config_hash`` identifies the settings that change
    results (see :func:`config_hash`); with suite, dataset, method, compression
    and seed it is the key by which a resumed grid skips runs already recorded.
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
    config_hash: str | None = None

    def to_json(self) -> str:
        """The record as one line of strict JSON (NaN and infinities become ``null``)."""
        return json.dumps(_clean(asdict(self)), sort_keys=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "record") -> BenchRecord:
        """A record from a parsed JSON object; keys that are not fields are ignored.

        Raises:
            ValueError: ``data`` is not a dict, or lacks ``suite``, ``dataset`` or ``method``
                (the message starts with ``where``).
        """
        if not isinstance(data, dict):
            raise ValueError(f"{where}: must be a JSON object, got {type(data).__name__}")
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ValueError(f"{where}: missing required keys {missing}")
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        return cls(**kwargs)


def config_hash(settings: Mapping[str, Any]) -> str:
    """12 hex digits of SHA-256 over ``settings`` as canonical JSON (sorted keys).

    A suite passes the settings that change its results (model, dim, epochs, data
    sizes, ...), never progress or output options, so a grid rerun with the same
    settings finds its runs already recorded.

    Example:
        >>> config_hash({"dim": 16, "lr": 0.001}) == config_hash({"lr": 0.001, "dim": 16})
        True
    """
    text = json.dumps(_clean(dict(settings)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


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
