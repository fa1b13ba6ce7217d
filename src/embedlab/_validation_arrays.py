"""Validation helpers for arrays, tensors, vectors and graphs (see :mod:`embedlab._validation`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from embedlab._validation_core import (
    check_finite,
    check_int,
    check_nonempty,
    is_tensor,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "check_adjacency",
    "check_batch_labels",
    "check_class_ids",
    "check_distinct_points",
    "check_embedding_matrix",
    "check_embeddings",
    "check_enough_points",
    "check_int_in_range",
    "check_label_vector",
    "check_labels_for",
    "check_min_classes",
    "check_points",
    "check_required_keys",
    "check_same_batch",
    "check_same_rows",
    "check_unique_ids",
    "check_vector_ids",
    "check_vectors",
]


def check_points(name: str, value: Any, *, min_points: int = 1) -> np.ndarray:
    """A point cloud ``(n_points, dim)``: a 2-D numpy array or torch tensor of finite reals.

    Returns a numpy array (float32 stays float32, every other dtype becomes float64).
    The error for a non-finite value names the first bad row.
    """
    if is_tensor(value):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 2-D array, got {type(value).__name__}") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_points, dim), got shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64)
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least 1 column, got shape {arr.shape}")
    if arr.shape[0] < min_points:
        raise ValueError(f"{name} must have at least {min_points} points, got {arr.shape[0]}")
    bad_rows = ~np.isfinite(arr).all(axis=1)
    if bad_rows.any():
        first = int(np.argmax(bad_rows))
        raise ValueError(
            f"{name} must be finite, got NaN or inf in row {first} "
            f"({int(bad_rows.sum())} bad rows in all)"
        )
    return arr


def check_enough_points(name: str, n: int, needed: int, reason: str) -> None:
    """``n`` points are too few for ``reason`` (e.g. ``"k=20 nearest neighbours"``)."""
    if n < needed:
        raise ValueError(f"{name} has {n} points but {reason} need at least {needed}")


def check_distinct_points(name: str, points: np.ndarray, what: str) -> None:
    """``points (n, dim)`` must not all be the same point: ``what`` (e.g. ``"TwoNN's
    intrinsic dimension"``) has no finite value on a single repeated point."""
    if points.shape[0] and bool((points == points[0]).all()):
        raise ValueError(
            f"{name} must hold at least 2 distinct points, got {points.shape[0]} identical "
            f"points; {what} is undefined"
        )


def check_same_rows(name_a: str, n_a: int, name_b: str, n_b: int) -> None:
    """Two arrays whose rows pair up (the same samples) must have as many rows."""
    if n_a != n_b:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of rows (paired samples), "
            f"got {n_a} and {n_b}"
        )


def check_label_vector(name: str, value: Any, n: int) -> np.ndarray:
    """Labels ``(n,)`` (class ids or values) or ``(n, m)`` (values), finite; returned as numpy."""
    if is_tensor(value):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, m), got {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr.reshape(n, -1)).all(axis=1)
        if bad.any():
            raise ValueError(f"{name} must be finite, got NaN or inf in row {int(np.argmax(bad))}")
    return arr


def check_embedding_matrix(name: str, emb: torch.Tensor) -> None:
    """Embeddings: a non-empty, finite, floating ``(n, dim)`` tensor."""
    if not emb.dtype.is_floating_point:
        raise TypeError(f"{name} must hold floating-point values, got dtype {emb.dtype}")
    if emb.dim() != 2:
        raise ValueError(f"{name} must have shape (n, dim), got {tuple(emb.shape)}")
    check_nonempty(name, int(emb.shape[0]))
    if emb.shape[1] == 0:
        raise ValueError(f"{name} must have dim >= 1, got shape {tuple(emb.shape)}")
    check_finite(name, emb)


def check_labels_for(name: str, labels: np.ndarray, n: int, emb_name: str) -> None:
    """Class labels: integers of shape ``(n,)``, one per row of ``emb_name``."""
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(
            f"{name} must have shape ({n},) to match the {n} rows of {emb_name}, got {labels.shape}"
        )


def check_min_classes(name: str, labels: np.ndarray, minimum: int = 2) -> int:
    """``labels`` must contain at least ``minimum`` distinct classes; return the count."""
    n_classes = int(np.unique(labels).size)
    if n_classes < minimum:
        raise ValueError(f"{name} must contain at least {minimum} classes, got {n_classes}")
    return n_classes


def check_embeddings(name: str, value: Any, *, ndim: int = 2) -> torch.Tensor:
    """A finite floating-point tensor with ``ndim`` dimensions (e.g. ``(batch, dim)``)."""
    if not is_tensor(value):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if value.dim() != ndim:
        shape = {2: "(batch, dim)", 3: "(batch, n_views, dim)"}.get(ndim, f"{ndim} dimensions")
        raise ValueError(f"{name} must have shape {shape}, got {tuple(value.shape)}")
    check_finite(name, value.detach())
    return value


def check_batch_labels(
    labels: Any, batch: int, *, name: str = "labels", floating: bool = False
) -> torch.Tensor:
    """Labels of a batch: a 1-d tensor with one entry per embedding row.

    Integer class labels unless ``floating`` (regression targets), which must be finite.
    """
    import torch

    if not is_tensor(labels):
        labels = torch.as_tensor(np.asarray(labels))
    if labels.dim() != 1:
        raise ValueError(f"{name} must have shape (batch,), got {tuple(labels.shape)}")
    if labels.shape[0] != batch:
        raise ValueError(
            f"embeddings and {name} must have the same batch size, got {batch} and "
            f"{labels.shape[0]}"
        )
    if floating:
        if not labels.is_floating_point():
            labels = labels.to(torch.get_default_dtype())
        check_finite(name, labels)
    elif labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor of class ids, got dtype {labels.dtype}")
    return torch.as_tensor(labels)


def check_same_batch(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Two tensors that pair up row by row must have the same shape."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )


def check_class_ids(name: str, labels: torch.Tensor, n_classes: int) -> None:
    """Class ids must lie in ``[0, n_classes)``."""
    import torch

    if labels.numel() == 0:
        return
    bad = (labels < 0) | (labels >= n_classes)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0, 0])
        raise ValueError(
            f"{name} must be in [0, {n_classes}), got {int(labels[first])} at index {first}"
        )


def check_adjacency(name: str, adj: Any) -> Any:
    """A square, finite, non-negative adjacency matrix; returned as ``scipy.sparse`` CSR float64.

    Dense arrays are accepted and converted; the returned matrix has sorted indices and no
    explicit zeros.
    """
    import scipy.sparse as sp

    if sp.issparse(adj):
        mat = sp.csr_matrix(adj, dtype=np.float64)
    elif isinstance(adj, (np.ndarray, list)):
        arr = np.asarray(adj, dtype=np.float64)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix, got {arr.ndim} dimension(s)")
        mat = sp.csr_matrix(arr)
    else:
        raise TypeError(
            f"{name} must be a scipy.sparse matrix or a numpy array, got {type(adj).__name__}"
        )
    if mat.shape[0] != mat.shape[1]:
        raise ValueError(f"{name} must be square (n_nodes, n_nodes), got shape {mat.shape}")
    if mat.nnz and not np.all(np.isfinite(mat.data)):
        raise ValueError(f"{name} must be finite, got a non-finite edge weight")
    if mat.nnz and mat.data.min() < 0:
        raise ValueError(f"{name} must have non-negative edge weights, got {mat.data.min():g}")
    mat.eliminate_zeros()
    mat.sort_indices()
    return mat


def check_required_keys(where: str, present: Iterable[str], required: Iterable[str]) -> None:
    """A file or mapping must hold every ``required`` key; the error lists the keys it has."""
    have = sorted(present)
    missing = [k for k in required if k not in have]
    if missing:
        shown = ", ".join(repr(k) for k in have) or "none"
        raise ValueError(f"{where} has no {', '.join(repr(k) for k in missing)}; keys: {shown}")


def check_int_in_range(name: str, value: Any, low: int, high: int, *, why: str = "") -> int:
    """An integer in the closed interval ``[low, high]``; ``why`` explains the upper bound,
    e.g. ``" (D, the number of parameters)"``."""
    v = check_int(name, value, min_value=low)
    if v > high:
        raise ValueError(f"{name} must be <= {high}{why}, got {v}")
    return v


def check_vectors(name: str, value: Any, dim: int) -> np.ndarray:
    """Vectors ``(n, dim)`` for a vector index, returned as C-contiguous float32.

    Integer and float64 input is cast; the error for NaN or inf (also from a float64 value too
    large for float32) names the first bad row.
    """
    if is_tensor(value):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a 2-D array, got {type(value).__name__}") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n, {dim}), got shape {arr.shape}")
    if arr.shape[1] != dim:
        raise ValueError(
            f"{name} must have dim={dim} columns to match the index, got shape {arr.shape}"
        )
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    bad_rows = ~np.isfinite(out).all(axis=1)
    if bad_rows.any():
        first = int(np.argmax(bad_rows))
        raise ValueError(
            f"{name} must be finite, got NaN or inf in row {first} "
            f"({int(bad_rows.sum())} bad rows in all)"
        )
    return out


def check_vector_ids(name: str, value: Any, n: int | None = None) -> np.ndarray:
    """Ids of index vectors: integers ``>= 0`` of shape ``(n,)``, returned as int64.

    ``-1`` is reserved for "no result", so negative ids are refused.
    """
    if is_tensor(value):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.size and arr.dtype == object and all(isinstance(v, int) for v in arr.flat):
        big = next((v for v in arr.flat if not -(2**63) <= v < 2**63), None)
        raise ValueError(f"{name} must be integers in [0, 2**63 - 1], got {big}")
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        want = f"({n},)" if n is not None else "(n,)"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if arr.size and arr.dtype.kind == "u" and int(arr.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name} must be integers in [0, 2**63 - 1], got {int(arr.max())}")
    out = arr.astype(np.int64, copy=False)
    if out.size and bool((out < 0).any()):
        first = int(np.argmax(out < 0))
        raise ValueError(f"{name} must be >= 0 (-1 marks a missing result), got {out[first]}")
    return out


def check_unique_ids(name: str, ids: np.ndarray) -> None:
    """Ids in one call must be distinct; the error names one repeated id."""
    if ids.size < 2:
        return
    s = np.sort(ids)
    dup = s[1:] == s[:-1]
    if dup.any():
        raise ValueError(f"{name} must be unique, got id {int(s[1:][dup][0])} more than once")
