"""The losses of bundle completion: the multinomial completion loss and InfoNCE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from embedlab._validation import check_positive_float

__all__ = ["completion_loss", "info_nce", "pad_bundles"]


def pad_bundles(bundles: Sequence[Any], pad: int = -1) -> torch.Tensor:
    """``(len(bundles), max_len)`` int64 item ids, short rows filled with ``pad``.

    Example:
        >>> pad_bundles([[3, 1], [2]]).tolist()
        [[3, 1], [2, -1]]
    """
    if not bundles:
        raise ValueError("bundles must not be empty, got 0 bundles")
    width = max(len(b) for b in bundles)
    out = torch.full((len(bundles), max(width, 1)), pad, dtype=torch.long)
    for i, b in enumerate(bundles):
        out[i, : len(b)] = torch.as_tensor(np.asarray(b), dtype=torch.long)
    return out


def _check_ids(name: str, ids: torch.Tensor, batch: int, n_items: int) -> None:
    if ids.ndim != 2 or ids.shape[0] != batch:
        raise ValueError(
            f"{name} must be (batch={batch}, max_len) item ids padded with -1, "
            f"got shape {tuple(ids.shape)}"
        )
    if ids.numel() and (ids.min() < -1 or ids.max() >= n_items):
        raise ValueError(f"{name} ids must be in [0, {n_items}) or -1 (padding)")


def completion_loss(
    logits: torch.Tensor, given: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Mean over bundles of ``-mean_{j in targets} log softmax(logits)_j`` over all items,
    with the given items removed from the softmax.

    Args:
        logits: ``(batch, n_items)`` scores of every item for each partial bundle.
        given: ``(batch, n_given)`` ids of the given items, ``-1`` padding.
        targets: ``(batch, n_targets)`` ids of the items to complete, ``-1`` padding; every
            row holds at least one id, none of them given.

    Example:
        >>> z = torch.zeros(1, 4)
        >>> round(float(completion_loss(z, torch.tensor([[0]]), torch.tensor([[1, -1]]))), 4)
        1.0986
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must be (batch, n_items), got shape {tuple(logits.shape)}")
    b, n = logits.shape
    _check_ids("given", given, b, n)
    _check_ids("targets", targets, b, n)
    tmask = targets >= 0
    counts = tmask.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError("targets must hold at least one item per bundle, got an empty row")
    masked = logits.clone()
    gmask = given >= 0
    rows = torch.arange(b).unsqueeze(1).expand_as(given)
    masked[rows[gmask], given[gmask]] = float("-inf")
    logp = F.log_softmax(masked, dim=1)
    picked = torch.where(tmask, logp.gather(1, targets.clamp(min=0)), 0.0)
    if not torch.isfinite(picked).all():
        raise ValueError("targets must not repeat a given item (its score is masked out)")
    return -(picked.sum(dim=1) / counts).mean()


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """InfoNCE between two views: row ``i`` of ``a`` should match row ``i`` of ``b`` among all
    rows of ``b`` (cosine similarity / ``temperature``, cross-entropy, mean over rows).

    Args:
        a: ``(n, d)`` first view.
        b: ``(n, d)`` second view, row-aligned with ``a``.
        temperature: softmax temperature (> 0).

    Example:
        >>> x = torch.eye(3)
        >>> float(info_nce(x, x, 0.01)) < 1e-6
        True
    """
    check_positive_float("temperature", temperature)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"a and b must be (n, d) of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    logits = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / temperature
    return F.cross_entropy(logits, torch.arange(a.shape[0]))
