"""Retrieval metrics of metric learning: precision@1, recall@k, MAP@R and R-precision.

Definitions follow Musgrave, Belongie & Lim, "A Metric Learning Reality Check" (ECCV 2020),
as in pytorch-metric-learning's ``AccuracyCalculator``. For a query with label ``y`` let
``R`` be the number of gallery items labelled ``y`` (the query itself excluded in
leave-one-out mode) and ``rel(i)`` whether the ``i``-th nearest gallery item is labelled ``y``:

- ``precision_at_1`` = ``rel(1)``;
- ``recall_at_k`` = 1 if any of the ``k`` nearest is labelled ``y`` (the "Recall@K" of
  metric-learning papers, e.g. Song et al. 2016 — *not* the fraction of the ``R`` relevant
  items that were found);
- ``r_precision`` = ``sum_{i<=R} rel(i) / R``;
- ``map_at_r`` = ``(1/R) sum_{i<=R} P(i) rel(i)`` with ``P(i)`` the precision over the first
  ``i`` neighbours.

Each metric is the mean over queries. Queries with ``R = 0`` (their class has no other item
in the gallery) are left out with a warning, as in pytorch-metric-learning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from embedlab._validation import check_bool, check_choice, check_int
from embedlab.evaluate._inputs import as_embeddings, as_labels

__all__ = ["Metric", "retrieval_metrics"]

#: ``"cos"`` (cosine), ``"ip"`` (inner product) or ``"l2"`` (Euclidean)
Metric = Literal["cos", "ip", "l2"]
_METRICS = ("cos", "ip", "l2")


def retrieval_metrics(
    query_emb: Any,
    query_labels: Any,
    gallery_emb: Any | None = None,
    gallery_labels: Any | None = None,
    *,
    k: Sequence[int] = (1, 5, 10),
    metric: Metric = "cos",
    leave_one_out: bool | None = None,
    block_size: int = 1024,
) -> dict[str, float]:
    """Exact k-nearest-neighbour retrieval quality of labelled embeddings.

    Args:
        query_emb: ``(n_q, dim)`` query embeddings (numpy or torch).
        query_labels: ``(n_q,)`` integer class labels.
        gallery_emb: ``(n_g, dim)`` gallery embeddings; ``None`` searches the queries
            themselves, leaving each query out of its own results.
        gallery_labels: ``(n_g,)`` labels of the gallery (required with ``gallery_emb``).
        k: the cut-offs of ``recall_at_k``; a ``k`` larger than the gallery means all of it.
        metric: ``"cos"`` (cosine), ``"ip"`` (inner product) or ``"l2"`` (Euclidean).
        leave_one_out: exclude gallery row ``i`` from the results of query ``i``. Defaults
            to True without a gallery; pass True with a gallery holding the *same items*
            embedded differently (e.g. new-model queries against an old-model gallery).
        block_size: queries scored at once (memory ``block_size x n_g`` floats).

    Returns:
        ``{"precision_at_1", "recall_at_<k>" for each k, "map_at_r", "r_precision"}``
        as floats in [0, 1].

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> retrieval_metrics(x, np.array([0, 0, 1, 1]), k=(1,))["map_at_r"]
        1.0
    """
    metric = check_choice("metric", metric, _METRICS)  # type: ignore[assignment]
    ks = _check_ks(k)
    block = check_int("block_size", block_size, min_value=1)
    q = as_embeddings("query_emb", query_emb)
    q_lab = as_labels("query_labels", query_labels, q.shape[0], "query_emb")
    if gallery_emb is None:
        if gallery_labels is not None:
            raise ValueError("gallery_labels was given without gallery_emb")
        loo = True if leave_one_out is None else check_bool("leave_one_out", leave_one_out)
        if not loo:
            raise ValueError("leave_one_out must be True when gallery_emb is None")
        g, g_lab = q, q_lab
    else:
        if gallery_labels is None:
            raise ValueError("gallery_labels is required with gallery_emb")
        g = as_embeddings("gallery_emb", gallery_emb)
        g_lab = as_labels("gallery_labels", gallery_labels, g.shape[0], "gallery_emb")
        if g.shape[1] != q.shape[1]:
            raise ValueError(
                f"gallery_emb must have the queries' dim {q.shape[1]}, got {g.shape[1]}"
            )
        loo = False if leave_one_out is None else check_bool("leave_one_out", leave_one_out)
        if loo and (g.shape[0] != q.shape[0] or not np.array_equal(g_lab, q_lab)):
            raise ValueError(
                "leave_one_out with a gallery needs the same items in the same order: "
                f"got {q.shape[0]} queries and {g.shape[0]} gallery rows or different labels"
            )
    dtype = torch.float64 if torch.float64 in (q.dtype, g.dtype) else torch.float32
    q, g = q.to(dtype), g.to(dtype)
    if metric == "cos":
        q = torch.nn.functional.normalize(q, dim=1)
        g = torch.nn.functional.normalize(g, dim=1)

    # R per query: same-class gallery items, the query itself excluded in leave-one-out.
    classes, counts = np.unique(g_lab, return_counts=True)
    pos = np.searchsorted(classes, q_lab)
    found = (pos < classes.size) & (classes[np.minimum(pos, classes.size - 1)] == q_lab)
    r_all = np.where(found, counts[np.minimum(pos, classes.size - 1)], 0) - int(loo)
    keep = np.flatnonzero(r_all > 0)
    if keep.size == 0:
        raise ValueError(
            "no query has a same-class item in the gallery (every class has a single "
            "sample in leave-one-out mode, or the gallery shares no label with the queries)"
        )
    if keep.size < q.shape[0]:
        warnings.warn(
            f"{q.shape[0] - keep.size} of {q.shape[0]} queries have no same-class item in the "
            "gallery and are left out of the retrieval metrics",
            stacklevel=2,
        )
    n_g = g.shape[0]
    k_max = min(n_g - int(loo), max(int(r_all.max()), max(ks)))
    g_lab_t = torch.from_numpy(g_lab)
    g_sq = (g * g).sum(dim=1)
    sums = {"p1": 0.0, "map": 0.0, "rp": 0.0, **{f"r{kk}": 0.0 for kk in ks}}
    for lo in range(0, keep.size, block):
        idx = keep[lo : lo + block]
        qi = q[torch.from_numpy(idx)]
        scores = qi @ g.T  # (b, n_g)
        if metric == "l2":
            scores = 2.0 * scores - g_sq[None, :]  # -||q - g||^2 up to a per-query constant
        if loo:
            scores[torch.arange(idx.size), torch.from_numpy(idx)] = -torch.inf
        top = torch.topk(scores, k_max, dim=1, largest=True, sorted=True).indices
        rel = g_lab_t[top] == torch.from_numpy(q_lab[idx])[:, None]  # (b, k_max)
        r = torch.from_numpy(r_all[idx]).to(dtype)
        ranks = torch.arange(1, k_max + 1, dtype=dtype)
        rel_r = rel & (ranks[None, :] <= r[:, None])
        relf = rel_r.to(dtype)
        prec_at_i = torch.cumsum(relf, dim=1) / ranks[None, :]
        sums["map"] += float(((prec_at_i * relf).sum(dim=1) / r).sum())
        sums["rp"] += float((relf.sum(dim=1) / r).sum())
        sums["p1"] += float(rel[:, 0].sum())
        for kk in ks:
            sums[f"r{kk}"] += float(rel[:, : min(kk, k_max)].any(dim=1).sum())
    n = float(keep.size)
    out = {"precision_at_1": sums["p1"] / n}
    out.update({f"recall_at_{kk}": sums[f"r{kk}"] / n for kk in ks})
    out["map_at_r"] = sums["map"] / n
    out["r_precision"] = sums["rp"] / n
    return out


def _check_ks(k: Sequence[int]) -> tuple[int, ...]:
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
        k = (int(k),)
    if not isinstance(k, (list, tuple)) or not k:
        raise ValueError(f"k must be a non-empty sequence of integers >= 1, got {k!r}")
    return tuple(sorted({check_int("k", kk, min_value=1) for kk in k}))
