"""Versioned indexes: query an index built with an old model using a new model's embeddings.

The BT^2 / BCT setting: re-embedding ("backfilling") a large gallery after every model
upgrade is expensive. :class:`CompatIndex` keeps the old gallery index as it is and maps
each new-model query into the old space with a linear transform ``q_old = q_new @ M``:

- :func:`procrustes_transform` fits ``M`` (``d_new x d_old``, orthonormal columns) on
  paired embeddings of the same items by both models (orthogonal Procrustes, Schönemann
  1966; for ``d_new > d_old`` the semi-orthogonal solution ``U V^T`` of ``new^T old``);
- :func:`bt2_transform` takes the basis transformation learned by
  :func:`embedlab.training.compat.train_bt2` (saved with ``save_basis_transform``).

The compatibility criterion (Shen et al., CVPR 2020): new-query / old-gallery retrieval
must beat old/old.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Self

import numpy as np

from embedlab._validation import check_vectors
from embedlab.index._base import F32, I64, IdMap, VectorIndex, register_index

__all__ = ["CompatIndex", "bt2_transform", "procrustes_transform"]


def procrustes_transform(new: Any, old: Any) -> F32:
    """``M`` (d_new, d_old) minimising ``||new @ M - old||_F`` with ``M^T M = I``.

    Args:
        new: ``(n, d_new)`` embeddings of n items by the new model.
        old: ``(n, d_old)`` embeddings of the same items by the old model, same row order;
            ``d_new >= d_old``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> old = rng.standard_normal((100, 8)).astype("float32")
        >>> rot = np.linalg.qr(rng.standard_normal((8, 8)))[0].astype("float32")
        >>> m = procrustes_transform(old @ rot, old)
        >>> bool(np.allclose(old @ rot @ m, old, atol=1e-4))
        True
    """
    new_arr = np.asarray(new)
    if new_arr.ndim != 2:
        raise ValueError(f"new must have shape (n, d_new), got {new_arr.shape}")
    new_arr = check_vectors("new", new_arr, new_arr.shape[1])
    old_arr = np.asarray(old)
    if old_arr.ndim != 2 or old_arr.shape[0] != new_arr.shape[0]:
        raise ValueError(
            f"old must have shape (n={new_arr.shape[0]}, d_old) like new, got {old_arr.shape}"
        )
    old_arr = check_vectors("old", old_arr, old_arr.shape[1])
    d_new, d_old = new_arr.shape[1], old_arr.shape[1]
    if d_new < d_old:
        raise ValueError(f"new must have at least d_old={d_old} dims, got d_new={d_new}")
    if new_arr.shape[0] < 2:
        raise ValueError(f"procrustes needs at least 2 paired rows, got {new_arr.shape[0]}")
    u, _, vt = np.linalg.svd(new_arr.astype(np.float64).T @ old_arr, full_matrices=False)
    return np.ascontiguousarray((u @ vt).astype(np.float32))


def bt2_transform(path: str | os.PathLike[str], *, queries_are: str = "backbone") -> F32:
    """The ``M`` of a BT^2 basis transformation saved by ``save_basis_transform``.

    Args:
        path: the safetensors file.
        queries_are: ``"backbone"`` when queries are the new backbone's outputs ``z``
            (``M = Q[:d_old]^T``), ``"transformed"`` when they are the new encoder's
            outputs ``u = Q z`` (then ``M`` keeps the first ``d_old`` dims).
    """
    from embedlab.training.compat import load_basis_transform

    q, d_old = load_basis_transform(path)
    mat = q.detach().cpu().numpy().astype(np.float32)
    if queries_are == "backbone":
        return np.ascontiguousarray(mat[:d_old].T)
    if queries_are == "transformed":
        return np.ascontiguousarray(np.eye(mat.shape[0], d_old, dtype=np.float32))
    raise ValueError(f"queries_are must be 'backbone' or 'transformed', got {queries_are!r}")


@register_index("CompatIndex")
class CompatIndex(VectorIndex):
    """An old-model index searched with new-model queries through ``q @ transform``.

    ``add`` / ``remove`` act on the old index (gallery vectors of the OLD model,
    ``old.dim`` wide); ``search`` takes NEW-model queries (``transform.shape[0]`` wide),
    maps them and searches the old index. The ids are the old index's. Saved and loaded
    like any index (the old index is a nested folder, the transform an array).

    Args:
        old: the index built from old-model embeddings (any type).
        transform: ``(d_new, d_old)`` float matrix, e.g. :func:`procrustes_transform`.

    Example:
        >>> from embedlab.index import Flat
        >>> rng = np.random.default_rng(0)
        >>> gallery_old = rng.standard_normal((50, 8)).astype("float32")
        >>> rot = np.linalg.qr(rng.standard_normal((8, 8)))[0].astype("float32")
        >>> old = Flat(8); old.add(gallery_old)
        >>> index = CompatIndex(old, procrustes_transform(gallery_old @ rot, gallery_old))
        >>> int(index.search(gallery_old[:1] @ rot, k=1)[1][0, 0])
        0
    """

    def __init__(self, old: VectorIndex, transform: Any) -> None:
        if not isinstance(old, VectorIndex):
            raise TypeError(f"old must be a VectorIndex, got {type(old).__name__}")
        mat = np.asarray(transform)
        if mat.ndim != 2 or mat.shape[1] != old.dim:
            raise ValueError(f"transform must have shape (d_new, d_old={old.dim}), got {mat.shape}")
        mat = check_vectors("transform", mat, old.dim)
        super().__init__(mat.shape[0], metric=old.metric)  # before self.old: see _idmap
        self.old = old
        self.transform: F32 = mat

    # The ids live in the old index; this wrapper shares them.
    @property  # type: ignore[override]
    def _idmap(self) -> IdMap:
        return self.old._idmap

    @_idmap.setter
    def _idmap(self, value: IdMap) -> None:
        if "old" in self.__dict__:  # on load: the saved ids are the old index's ids
            self.old._idmap = value

    @property
    def is_trained(self) -> bool:
        return self.old.is_trained

    def spec(self) -> str:
        return f"CompatIndex({self.old.spec()})"

    def train(self, x: Any) -> None:
        """Train the old index on OLD-model vectors."""
        self.old.train(x)

    def add(self, x: Any, ids: Any = None) -> None:
        """Add OLD-model gallery vectors ``(n, old.dim)`` to the old index."""
        self.old.add(x, ids)

    def _search(self, q: F32, k: int) -> tuple[F32, I64]:
        mapped = self.old._prepare(q @ self.transform, "mapped queries")
        return self.old._search(mapped, k)

    def _remove(self, positions: I64) -> None:
        self.old._remove(positions)

    def _memory_bytes(self) -> int:
        return self.old._memory_bytes() + int(self.transform.nbytes)

    def disk_bytes(self) -> int:
        return self.old.disk_bytes()

    def _children(self) -> dict[str, VectorIndex]:
        return {"old": self.old}

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"transform": self.transform}, {}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        from embedlab.index.io import load_child

        return cls(load_child(folder, "old"), np.asarray(arrays["transform"]))
