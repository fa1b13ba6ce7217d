"""Checkpoints of metric training: ``torch.save`` of state dicts (no pickled objects)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from embedlab._io import atomic_write_bytes

__all__ = ["load_checkpoint", "save_state"]


def save_state(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """``torch.save`` a dict of tensors / state dicts / numbers atomically; read it back with
    ``torch.load(weights_only=True)``."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(
    path: str | os.PathLike[str], encoder: nn.Module, loss: nn.Module | None = None
) -> dict[str, Any]:
    """Load a :meth:`MetricTrainer.save_checkpoint` file into ``encoder`` (and ``loss``).

    Returns the metadata (``epoch``, ``valid_precision_at_1`` when known).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint does not exist: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file: a message that names it
        raise ValueError(f"{path.name}: not a readable embedlab checkpoint ({exc})") from None
    if not isinstance(state, dict) or "encoder" not in state:
        raise ValueError(f"{path.name}: not an embedlab checkpoint (no 'encoder' state)")
    encoder.load_state_dict(state["encoder"])
    if loss is not None and "loss" in state:
        loss.load_state_dict(state["loss"])
    return {k: v for k, v in state.items() if k not in ("encoder", "loss")}
