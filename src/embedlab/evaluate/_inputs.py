"""Shared input checks: embeddings ``(n, dim)`` and labels ``(n,)`` from numpy or torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from embedlab._validation import check_embedding_matrix, check_labels_for

__all__ = ["as_embeddings", "as_labels"]


def as_embeddings(name: str, emb: Any) -> torch.Tensor:
    """A finite ``(n, dim)`` float tensor on the CPU (float64 stays float64, else float32)."""
    t = emb.detach().cpu() if isinstance(emb, torch.Tensor) else torch.as_tensor(np.asarray(emb))
    check_embedding_matrix(name, t)
    return t if t.dtype == torch.float64 else t.to(torch.float32)


def as_labels(name: str, labels: Any, n: int, emb_name: str) -> np.ndarray:
    """Integer labels ``(n,)`` as int64 numpy."""
    arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    check_labels_for(name, arr, n, emb_name)
    return arr.astype(np.int64, copy=False)
