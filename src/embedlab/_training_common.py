"""Pieces shared by the trainers: seeded RNG scopes and the progress bar."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["forked_rng", "progress_bar"]


def forked_rng(device: torch.device) -> AbstractContextManager[Any]:
    """Seed inside without touching the caller's CPU (and, on CUDA, device) RNG state."""
    devices: list[int] = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else 0]
    return torch.random.fork_rng(devices=devices)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Progress]:
    """A rich progress bar (description, bar, n/total, elapsed, an ``info`` field); a silent
    one when ``enabled`` is False."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        disable=not enabled,
    )
    with bar if enabled else nullcontext(bar):
        yield bar
