"""Vector sets packed in one matrix (:class:`PackedSets`) and their validation (:func:`pack_sets`).

Part of :mod:`embedlab.index.chamfer` (which re-exports the public names): a set of token
vectors is a ``(m, dim)`` matrix; ``n`` sets are one ``(total, dim)`` matrix plus
``offsets (n + 1,)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlab.index._rows import l2_normalize
from embedlab.index._types import F32, I64

__all__ = ["PackedSets", "gather_index", "pack_sets"]


@dataclass(frozen=True)
class PackedSets:
    """``n`` vector sets packed in one matrix.

    Args:
        vectors: ``(total, dim)`` float32, the sets one after the other.
        offsets: ``(n + 1,)`` int64, ``offsets[0] == 0``, ``offsets[-1] == total``; set ``i``
            is ``vectors[offsets[i]:offsets[i + 1]]`` and holds at least one vector.

    Use :func:`pack_sets` to build one from a list of matrices (it validates).

    Example:
        >>> import numpy as np
        >>> p = pack_sets([np.ones((2, 3)), np.zeros((1, 3))])
        >>> len(p), p.dim, p.lengths.tolist(), p[1].shape
        (2, 3, [2, 1], (1, 3))
    """

    vectors: F32
    offsets: I64

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self.vectors.shape[1])

    @property
    def lengths(self) -> I64:
        """Vectors per set ``(n,)``."""
        return np.diff(self.offsets)

    def __getitem__(self, i: int) -> F32:
        return self.vectors[self.offsets[i] : self.offsets[i + 1]]

    def to_list(self) -> list[F32]:
        """The sets as a list of ``(m_i, dim)`` views."""
        return [self[i] for i in range(len(self))]

    def select(self, rows: np.ndarray) -> PackedSets:
        """The sets ``rows`` (any order, repeats allowed), packed anew (copies the vectors)."""
        rows = np.asarray(rows, dtype=np.int64)
        index, offsets = gather_index(self.offsets, rows)
        return PackedSets(np.ascontiguousarray(self.vectors[index]), offsets)

    def normalized(self) -> PackedSets:
        """Every vector scaled to unit L2 norm (all-zero vectors stay zero)."""
        return PackedSets(l2_normalize(self.vectors), self.offsets)


def gather_index(offsets: I64, rows: I64) -> tuple[I64, I64]:
    """Row indices into the packed matrix for the sets ``rows`` and the new offsets."""
    lengths = offsets[rows + 1] - offsets[rows]
    new_offsets = np.zeros(rows.shape[0] + 1, np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    # index of vector j of the result: start of its set + (j - start of its set in the result)
    index = np.arange(int(new_offsets[-1]), dtype=np.int64)
    index += np.repeat(offsets[rows] - new_offsets[:-1], lengths)
    return index, new_offsets


def pack_sets(sets: Any, dim: int | None = None, *, name: str = "sets") -> PackedSets:
    """Validate vector sets and pack them (see :class:`PackedSets`).

    Args:
        sets: a sequence of ``(m_i, dim)`` arrays (numpy, torch or nested lists), a
            ``(n, m, dim)`` array (``n`` sets of ``m`` vectors), a :class:`PackedSets` or any
            object with packed ``vectors`` and ``offsets`` (``data.multivector.TokenSets``).
        dim: required vector dimension (default: that of the first set).
        name: what the sets are, for error messages (``"documents"``, ``"queries"``).

    Returns:
        :class:`PackedSets` with float32 vectors.

    Raises:
        TypeError: ``sets`` is not a sequence of arrays, or holds non-numbers.
        ValueError: a set is empty, has the wrong number of columns, or holds NaN / inf; the
            message names the set (``documents[3] must hold at least one vector``).
    """
    if isinstance(sets, PackedSets):
        return _check_packed(sets, dim, name)
    if hasattr(sets, "vectors") and hasattr(sets, "offsets"):  # e.g. data.multivector.TokenSets
        return _check_packed(
            PackedSets(np.asarray(sets.vectors), np.asarray(sets.offsets)), dim, name
        )
    if isinstance(sets, np.ndarray) and sets.ndim == 3:
        sets = list(sets)
    elif isinstance(sets, np.ndarray):
        raise ValueError(
            f"{name} must be a sequence of (m, dim) arrays or an (n, m, dim) array, got one "
            f"array of shape {sets.shape}; wrap a single set in a list"
        )
    if isinstance(sets, (str, bytes)) or not isinstance(sets, (Sequence, np.ndarray)):
        raise TypeError(
            f"{name} must be a sequence of (m, dim) arrays (one per set), got {type(sets).__name__}"
        )
    mats: list[np.ndarray] = []
    for i, s in enumerate(sets):
        arr = np.asarray(s.detach().cpu().numpy() if hasattr(s, "detach") else s)
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"{name}[{i}] must hold real numbers, got dtype {arr.dtype}")
        if arr.ndim != 2 or (dim is not None and arr.shape[1] != dim):
            want = "(m, dim)" if dim is None else f"(m, {dim})"
            raise ValueError(f"{name}[{i}] must have shape {want}, got shape {arr.shape}")
        if dim is None:
            dim = int(arr.shape[1])
            if dim < 1:
                raise ValueError(f"{name}[{i}] must have at least one column, got {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name}[{i}] must hold at least one vector, got shape {arr.shape}")
        mats.append(arr)
    if dim is None:
        raise ValueError(f"{name} must hold at least one set to infer dim, got none")
    offsets = np.zeros(len(mats) + 1, np.int64)
    np.cumsum([m.shape[0] for m in mats], out=offsets[1:])
    with np.errstate(over="ignore"):
        vectors = np.concatenate(mats, dtype=np.float32) if mats else np.zeros((0, dim), np.float32)
    _check_finite_sets(name, vectors, offsets)
    return PackedSets(vectors, offsets)


def _check_finite_sets(name: str, vectors: np.ndarray, offsets: I64) -> None:
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        i = int(np.searchsorted(offsets, row, side="right")) - 1
        raise ValueError(
            f"{name}[{i}] must be finite, got NaN or inf in row {row - int(offsets[i])}"
        )


def _check_packed(p: PackedSets, dim: int | None, name: str) -> PackedSets:
    offsets = np.asarray(p.offsets)
    if offsets.ndim != 1 or offsets.shape[0] < 1 or offsets.dtype.kind not in "iu":
        raise ValueError(
            f"{name}.offsets must be a 1-d integer array of n + 1 set boundaries, "
            f"got {offsets.dtype} {offsets.shape}"
        )
    offsets = offsets.astype(np.int64, copy=False)
    vectors = np.asarray(p.vectors)
    if vectors.ndim != 2 or (dim is not None and vectors.shape[1] != dim):
        want = "(total, dim)" if dim is None else f"(total, {dim})"
        raise ValueError(f"{name}.vectors must have shape {want}, got shape {vectors.shape}")
    if vectors.dtype.kind not in "fiu":
        raise TypeError(f"{name}.vectors must hold real numbers, got dtype {vectors.dtype}")
    if int(offsets[0]) != 0 or int(offsets[-1]) != vectors.shape[0]:
        raise ValueError(
            f"{name}.offsets must start at 0 and end at {vectors.shape[0]} (the vector count), "
            f"got {int(offsets[0])} and {int(offsets[-1])}"
        )
    lengths = np.diff(offsets)
    if lengths.size and bool((lengths <= 0).any()):
        first = int(np.argmax(lengths <= 0))
        raise ValueError(
            f"{name}[{first}] must hold at least one vector, got {int(lengths[first])}"
        )
    with np.errstate(over="ignore"):
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    _check_finite_sets(name, vectors, offsets)
    return PackedSets(vectors, offsets)
