"""Scoring a split of a :class:`BatchSource` on every rank of a run.

Each rank predicts its own part of the split; the logits and labels are then all-gathered,
so every rank holds those of the whole split and computes the same metrics (early stopping
and table searches decide identically everywhere). In one process it is a plain scan.
"""

from __future__ import annotations

from typing import Any

import torch

from embedlab.models import CTRModel
from embedlab.training._ctr_step import predict_logits
from embedlab.training._dist import gather_1d, rank_world
from embedlab.training._stream import BatchSource

__all__ = ["gathered_logits"]


def gathered_logits(
    model: CTRModel, source: BatchSource, split: str, *, batch_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits (n,), labels (n,))`` of ``model`` on all rows of ``split``, gathered from
    every rank (each reads its part in batches of ``batch_size``), on ``device``."""
    rank, world = rank_world()
    labels: list[torch.Tensor] = []

    def inputs() -> Any:
        for b in source.iter_batches(split, batch_size, rank=rank, world_size=world):
            labels.append(b.labels)
            dense = None if b.dense is None else b.dense.to(device)
            yield b.ids.to(device), dense, None

    logits = predict_logits(model, inputs()).to(device)
    y = torch.cat(labels).to(device) if labels else torch.zeros(0, device=device)
    return gather_1d(logits), gather_1d(y)
