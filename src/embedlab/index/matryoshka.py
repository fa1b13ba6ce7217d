"""Matryoshka funnel: coarse search on the first ``d`` dimensions, re-score with all of them.

Matryoshka-trained embeddings (Kusupati et al., NeurIPS 2022; 2D Matryoshka / Starbucks) keep
most of their quality in a prefix; the coarse pass is an exact ``Flat`` search on that prefix
(re-normalised for cosine), which costs ``d / dim`` of a full scan; the ``k * k_factor``
candidates are then re-scored exactly with the full vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import numpy as np

from embedlab._validation import check_int, check_int_in_range
from embedlab.index._base import F32, I64, Metric, VectorIndex, register_index
from embedlab.index._grow import Growing, grow
from embedlab.index.flat import Flat
from embedlab.index.rerank import rescore_candidates

__all__ = ["Matryoshka"]


@register_index("Matryoshka")
class Matryoshka(VectorIndex):
    """Two-stage index: ``Flat`` on the first ``d`` dims, exact re-scoring with all ``dim``.

    RAM: ``4 * (d + dim)`` bytes per vector (prefix index plus full vectors); put it under
    ``Rerank`` or use ``Flat`` when memory, not speed, is the constraint.

    Args:
        dim: vector dimension.
        metric: ``"cos"``, ``"ip"`` or ``"l2"``.
        d: prefix length for the coarse pass, ``1 <= d <= dim`` (default ``dim // 4``).
        k_factor: candidates re-scored per wanted result (>= 1).

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).standard_normal((300, 64)).astype("float32")
        >>> index = Matryoshka(64, d=16); index.add(x)
        >>> int(index.search(x[:1], k=1)[1][0, 0])
        0
    """

    _x = Growing()  # (ntotal, dim) float32 full vectors

    def __init__(
        self, dim: int, *, metric: Metric = "cos", d: int | None = None, k_factor: int = 10
    ) -> None:
        super().__init__(dim, metric=metric)
        self.d = check_int_in_range(
            "d", max(1, self.dim // 4) if d is None else d, 1, self.dim, why=" (dim)"
        )
        self.k_factor = check_int("k_factor", k_factor, min_value=1)
        self.coarse = Flat(self.d, metric=self.metric)
        self._x = np.zeros((0, self.dim), np.float32)

    def spec(self) -> str:
        return f"Matryoshka{self.d}"

    def _children(self) -> dict[str, VectorIndex]:
        return {"coarse": self.coarse}

    def _add(self, x: F32, ids: I64) -> None:
        self.coarse.add(x[:, : self.d], ids)
        grow(self, "_x").append(x)

    def _search(self, q: F32, k: int) -> tuple[F32, I64]:
        n_cand = min(k * self.k_factor, self.ntotal)
        _, cand_ids = self.coarse.search(q[:, : self.d], n_cand)
        pos = self._idmap.lookup(cand_ids)
        return rescore_candidates(q, pos, lambda p: self._x[p], self.metric, k)

    def _remove(self, positions: I64) -> None:
        self.coarse.remove(self._idmap.take(positions))
        self._x = np.delete(self._x, positions, axis=0)

    def _memory_bytes(self) -> int:
        return grow(self, "_x").nbytes + self.coarse.memory_bytes()

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"vectors": self._x}, {"d": self.d, "k_factor": self.k_factor}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        from embedlab.index.io import load_child

        obj = cls(meta["dim"], metric=meta["metric"], d=meta["d"], k_factor=meta["k_factor"])
        coarse = load_child(folder, "coarse")
        if not isinstance(coarse, Flat) or coarse.dim != obj.d:
            raise ValueError(f"{folder / 'coarse'} must hold a Flat index of dim {obj.d}")
        obj.coarse = coarse
        obj._x = np.ascontiguousarray(arrays["vectors"], dtype=np.float32)
        return obj
