"""Scalar quantisation to one byte per dimension with per-dimension calibration.

Scores are asymmetric (float query against de-quantised codes) and computed without
materialising the de-quantised vectors: ``q . (lo + scale * c) = (q * scale) . c + q . lo``,
so a search block only casts the uint8 codes to float32 before one matmul. Measured on
100k x 384 random vectors, 1,000 queries, k=10 (2 shared cores): 2.80 s for the folded form
against 3.04 s when de-quantising each block first (same ids); Flat takes 3.5 s there.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal, Self, cast

import numpy as np
import numpy.typing as npt

from embedlab._validation import check_choice, check_float_in_range
from embedlab.index._base import (
    F32,
    I64,
    Metric,
    VectorIndex,
    merge_topk,
    register_index,
    topk_rows,
)
from embedlab.index._grow import Growing, grow

__all__ = ["Int8"]

U8 = npt.NDArray[np.uint8]
_DB_BLOCK = 16384
_BLOCK = 1 << 24


@register_index("Int8")
class Int8(VectorIndex):
    """Int8 scalar quantisation: ``dim`` bytes per vector (plus 4 for ``metric="l2"``).

    Each dimension ``j`` maps ``[lo_j, hi_j]`` onto the 256 codes. ``calibration="minmax"`` takes
    the training minimum and maximum; ``"percentile"`` the ``100 - percentile`` and
    ``percentile`` percentiles (clipping outliers, a finer step for the bulk; a dimension
    whose two percentiles coincide keeps its minimum and maximum).

    A dimension with zero range in the training data (one training vector, constant rows or
    a constant feature) gets a fallback range, with a ``UserWarning`` that counts them:
    ``[-1, 1]`` for ``metric="cos"`` (any coordinate of a unit vector fits), otherwise its
    value plus or minus half the widest range of the other dimensions (or plus or minus twice
    the largest training magnitude when no dimension varies). Before this fallback such
    dimensions used a step of 1.0 (self-recall@1 0.005 under ``"cos"`` after training on one
    vector of the conformance data).

    Args:
        dim: vector dimension.
        metric: ``"cos"``, ``"ip"`` or ``"l2"``.
        calibration: ``"minmax"`` or ``"percentile"``.
        percentile: upper percentile for ``calibration="percentile"``, in [50, 100].

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).standard_normal((200, 16)).astype("float32")
        >>> index = Int8(16); index.train(x); index.add(x)
        >>> int(index.search(x[:1], k=1)[1][0, 0])
        0
    """

    needs_training = True

    _codes = Growing()  # (ntotal, dim) uint8
    _sq = Growing()  # (ntotal,) squared norms of the decoded rows, metric "l2" only

    def __init__(
        self,
        dim: int,
        *,
        metric: Metric = "cos",
        calibration: Literal["minmax", "percentile"] = "minmax",
        percentile: float = 99.9,
    ) -> None:
        super().__init__(dim, metric=metric)
        self.calibration = check_choice("calibration", calibration, ("minmax", "percentile"))
        self.percentile = check_float_in_range("percentile", percentile, 50.0, 100.0)
        self._lo: F32 = np.zeros(self.dim, np.float32)
        self._scale: F32 = np.ones(self.dim, np.float32)
        self._codes = np.zeros((0, self.dim), np.uint8)
        self._sq = np.zeros(0, np.float32)

    @property
    def codes(self) -> U8:
        """``(ntotal, dim)`` uint8 codes, one row per stored vector in the order of :attr:`ids`
        (a view of the index's storage, not a copy).
        """
        return cast(U8, self._codes)

    def _train(self, x: F32) -> None:
        lo = x.min(axis=0).astype(np.float64)
        hi = x.max(axis=0).astype(np.float64)
        if self.calibration == "percentile":
            p_lo = np.percentile(x, 100.0 - self.percentile, axis=0).astype(np.float64)
            p_hi = np.percentile(x, self.percentile, axis=0).astype(np.float64)
            # a dimension whose percentiles coincide (mostly one value) keeps its min / max
            spread = p_hi > p_lo
            lo, hi = np.where(spread, p_lo, lo), np.where(spread, p_hi, hi)
        # a zero range (or one whose float32 step would underflow to 0) has no usable scale
        flat = (hi - lo) / 255.0 < np.finfo(np.float32).tiny
        if flat.any():
            lo, hi = self._fallback_range(x, lo, hi, flat)
        self._lo = lo.astype(np.float32)
        self._scale = ((hi - lo) / 255.0).astype(np.float32)

    def _fallback_range(
        self, x: F32, lo: np.ndarray, hi: np.ndarray, flat: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """A range for the dimensions where the training vectors do not vary (``flat``).

        ``cos``: ``[-1, 1]``, the range of any coordinate of a unit vector. ``ip`` / ``l2``:
        the constant value plus or minus half the widest range of the other dimensions, or,
        when no dimension varies, plus or minus twice the largest training magnitude ``M``
        (so every dimension covers at least ``[-M, M]``; ``M = 1`` for all-zero training data).
        """
        lo, hi = lo.copy(), hi.copy()
        if self.metric == "cos":
            lo[flat], hi[flat] = -1.0, 1.0
            how = "[-1, 1], the range of a unit vector's coordinates (metric='cos')"
        else:
            if not flat.all():
                half = float((hi - lo)[~flat].max()) / 2
                how = f"their value +- {half:g}, half the widest range of the other dimensions"
            else:
                half = 2 * (float(np.abs(x).max()) or 1.0)
                how = f"their value +- {half:g}, twice the largest training magnitude"
            centre = lo[flat]
            lo[flat], hi[flat] = centre - half, centre + half
        n_distinct = int(np.unique(x, axis=0).shape[0])
        warnings.warn(
            f"Int8: {int(flat.sum())} of {self.dim} dimensions have zero range in the "
            f"training data ({n_distinct} distinct of {x.shape[0]} training vectors); they "
            f"are quantised over {how}. Train on at least 2 distinct, representative vectors.",
            UserWarning,
            stacklevel=4,
        )
        return lo, hi

    def encode(self, x: F32) -> U8:
        """Codes ``(n, dim)`` uint8 of vectors ``x (n, dim)``."""
        c = np.rint((x - self._lo) / self._scale)
        out: U8 = np.clip(c, 0, 255).astype(np.uint8)
        return out

    def decode(self, codes: U8) -> F32:
        """De-quantised vectors ``(n, dim)`` float32."""
        return (codes.astype(np.float32) * self._scale + self._lo).astype(np.float32)

    def _add(self, x: F32, ids: I64) -> None:
        codes = self.encode(x)
        grow(self, "_codes").append(codes)
        if self.metric == "l2":
            xd = self.decode(codes)
            grow(self, "_sq").append(np.einsum("ij,ij->i", xd, xd))

    def _search(self, q: F32, k: int) -> tuple[F32, I64]:
        n_q, n = q.shape[0], self._codes.shape[0]
        qs = q * self._scale  # (n_q, dim)
        q_lo = q @ self._lo  # (n_q,)
        q_sq = np.einsum("ij,ij->i", q, q)
        best_s = np.full((n_q, 0), -np.inf, np.float32)
        best_p = np.zeros((n_q, 0), np.int64)
        for ds in range(0, n, _DB_BLOCK):
            cf = self._codes[ds : ds + _DB_BLOCK].astype(np.float32)  # (bd, dim)
            bq = max(1, _BLOCK // cf.shape[0])
            parts_s, parts_p = [], []
            for qs0 in range(0, n_q, bq):
                s = qs[qs0 : qs0 + bq] @ cf.T
                s += q_lo[qs0 : qs0 + bq, None]
                if self.metric == "l2":
                    s *= 2
                    s -= q_sq[qs0 : qs0 + bq, None]
                    s -= self._sq[None, ds : ds + cf.shape[0]]
                ts, tp = topk_rows(s, k, offset=ds)
                parts_s.append(ts)
                parts_p.append(tp)
            block_s, block_p = np.concatenate(parts_s), np.concatenate(parts_p)
            best_s, best_p = merge_topk(best_s, best_p, block_s, block_p, k)
        return best_s, best_p

    def _remove(self, positions: I64) -> None:
        self._codes = np.delete(self._codes, positions, axis=0)
        if self.metric == "l2":
            self._sq = np.delete(self._sq, positions)

    def _memory_bytes(self) -> int:
        rows = grow(self, "_codes").nbytes + grow(self, "_sq").nbytes
        return rows + int(self._lo.nbytes + self._scale.nbytes)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {"codes": self._codes, "lo": self._lo, "scale": self._scale}
        return arrays, {"calibration": self.calibration, "percentile": self.percentile}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        obj = cls(
            meta["dim"],
            metric=meta["metric"],
            calibration=meta["calibration"],
            percentile=meta["percentile"],
        )
        obj._lo = np.asarray(arrays["lo"], np.float32)
        obj._scale = np.asarray(arrays["scale"], np.float32)
        obj._codes = np.ascontiguousarray(arrays["codes"], dtype=np.uint8)
        if obj.metric == "l2":
            xd = obj.decode(obj._codes)
            obj._sq = np.einsum("ij,ij->i", xd, xd)
        return obj
