"""Batches for metric learning: P x K class-balanced sampling, random views, embedding."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from embedlab._validation import check_int

__all__ = ["augment_batch", "balanced_batches", "embed"]


def balanced_batches(
    labels: np.ndarray, batch_size: int, samples_per_class: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """One epoch of P x K index batches: ``P = min(#classes, batch_size // K)`` classes each.

    ``K`` grows to ``batch_size // P`` when there are fewer classes than ``batch_size // K``
    (5 classes, batch 128 -> 5 x 25). Within a class samples are drawn without replacement
    from a reshuffled queue (with replacement for a class smaller than ``K``). An epoch has
    ``ceil(n / (P * K))`` batches.
    """
    classes, inverse = np.unique(labels, return_inverse=True)
    k = max(1, samples_per_class)
    p = max(1, min(len(classes), batch_size // k))
    k = max(k, batch_size // p)
    members = [np.flatnonzero(inverse == c) for c in range(len(classes))]
    queues: list[list[int]] = [[] for _ in classes]
    out: list[np.ndarray] = []
    for _ in range(math.ceil(len(labels) / (p * k))):
        chosen = rng.choice(len(classes), size=p, replace=False)
        batch: list[np.ndarray] = []
        for c in chosen:
            m = members[c]
            if len(m) < k:
                batch.append(rng.choice(m, size=k, replace=True))
                continue
            if len(queues[c]) < k:
                queues[c].extend(rng.permutation(m).tolist())
            batch.append(np.asarray(queues[c][:k]))
            del queues[c][:k]
        out.append(np.concatenate(batch))
    return out


def augment_batch(
    x: torch.Tensor, generator: torch.Generator, *, max_shift: int, noise: float
) -> torch.Tensor:
    """A random view of each input: images shifted by up to ``max_shift`` pixels (zero
    padded), then Gaussian noise of std ``noise``; flat ``(batch, d)`` inputs get noise only.

    Args:
        x: ``(batch, C, H, W)`` images or ``(batch, d)`` vectors.
    """
    if x.dim() == 4 and max_shift > 0:
        b, _, h, w = x.shape
        s = max_shift
        padded = nn.functional.pad(x, (s, s, s, s)).permute(0, 2, 3, 1)  # (b, H+2s, W+2s, C)
        dy = torch.randint(0, 2 * s + 1, (b,), generator=generator)
        dx = torch.randint(0, 2 * s + 1, (b,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)[None, :]).to(x.device)  # (b, H)
        cols = (dx[:, None] + torch.arange(w)[None, :]).to(x.device)  # (b, W)
        bi = torch.arange(b, device=x.device)[:, None, None]
        x = padded[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (b, C, H, W)
    if noise > 0:
        x = x + noise * torch.randn(x.shape, generator=generator).to(x.device)
    return x


def embed(
    encoder: nn.Module,
    x: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 1024,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """``(n, dim)`` float32 embeddings of inputs ``x`` ``(n, ...)`` in eval mode, no grad."""
    check_int("batch_size", batch_size, min_value=1)
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x, dtype=np.float32))
    was_training = encoder.training
    encoder.eval()
    out: list[torch.Tensor] = []
    try:
        with torch.no_grad():
            for lo in range(0, t.shape[0], batch_size):
                out.append(encoder(t[lo : lo + batch_size].to(device)).float().cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(out).numpy()
