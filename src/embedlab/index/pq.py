"""Product quantisation (``PQ{m}``) and optimised PQ (``OPQ{m}``), wrapping faiss' kernels.

Papers: Jégou, Douze, Schmid, "Product Quantization for Nearest Neighbor Search", TPAMI 2011;
Ge, He, Ke, Sun, "Optimized Product Quantization", CVPR 2013 (the BiDR reference uses OPQ,
96 sub-spaces x 256 centroids for 768-d).

faiss holds the codes (``faiss.IndexPQ``, inside ``faiss.IndexPreTransform`` with an
``OPQMatrix`` for OPQ); faiss' row numbers are our row positions, ids stay with the base class.
Metrics: ``l2`` -> ``METRIC_L2`` (scores are negative squared distances), ``ip`` ->
``METRIC_INNER_PRODUCT``, ``cos`` -> inner product on the L2-normalised vectors. Persistence
is ``faiss.serialize_index`` bytes as a uint8 array (no pickle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import faiss
import numpy as np
import numpy.typing as npt

from embedlab._validation import check_int
from embedlab.index._base import F32, I64, Metric, VectorIndex, register_index
from embedlab.index._faiss_blob import faiss_from_blob, faiss_to_blob

__all__ = ["OPQ", "PQ"]

# faiss' k-means asks for this many training points per centroid (it warns below that).
RECOMMENDED_POINTS_PER_CENTROID = 39


@register_index("PQ")
class PQ(VectorIndex):
    """Product quantisation: ``m`` sub-vectors, each coded by one of ``2^nbits`` centroids.

    ``m * nbits / 8`` bytes per vector (``PQ48`` at 384-d: 48 bytes, 32x less than float32),
    plus the codebooks (``dim * 2^nbits`` floats) shared by all vectors. Search is faiss'
    asymmetric distance computation (float query against the codes).

    Training needs at least ``2^nbits`` vectors (one per centroid; 256 for 8 bits); faiss
    recommends ``39 * 2^nbits`` (9,984 for 8 bits) for good codebooks.

    Args:
        dim: vector dimension; must be divisible by ``m``.
        m: number of sub-quantisers (bytes per vector at 8 bits).
        metric: ``"cos"``, ``"ip"`` or ``"l2"``.
        nbits: bits per sub-quantiser code (1 .. 16).
        seed: k-means seed.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).standard_normal((1000, 32)).astype("float32")
        >>> index = PQ(32, m=8, nbits=6); index.train(x); index.add(x)
        >>> index.search(x[:2], k=3)[1].shape
        (2, 3)
    """

    needs_training = True

    def __init__(
        self, dim: int, *, m: int, metric: Metric = "cos", nbits: int = 8, seed: int = 0
    ) -> None:
        super().__init__(dim, metric=metric)
        self.m = check_int("m", m, min_value=1)
        self.nbits = check_int("nbits", nbits, min_value=1)
        if self.nbits > 16:
            raise ValueError(f"nbits must be <= 16, got {nbits}")
        if self.dim % self.m:
            raise ValueError(
                f"dim must be divisible by m, got dim={self.dim} and m={self.m} "
                f"(remainder {self.dim % self.m})"
            )
        self.seed = check_int("seed", seed, min_value=0)
        self._index: Any = self._make()

    # -------------------------------------------------------------- faiss objects
    @property
    def _faiss_metric(self) -> int:
        return int(faiss.METRIC_L2 if self.metric == "l2" else faiss.METRIC_INNER_PRODUCT)

    def _make(self) -> Any:
        index = faiss.IndexPQ(self.dim, self.m, self.nbits, self._faiss_metric)
        self._configure(index.pq)
        return index

    def _configure(self, pq: Any) -> None:
        pq.cp.seed = self.seed
        pq.cp.min_points_per_centroid = 1  # our own check and docstring cover the minimum

    @property
    def faiss_index(self) -> Any:
        """The wrapped faiss index (rows in our insertion order)."""
        return self._index

    def _pq_index(self) -> Any:
        return self._index

    # ---------------------------------------------------------------------- info
    def spec(self) -> str:
        name = self.index_name or type(self).__name__
        return f"{name}{self.m}" if self.nbits == 8 else f"{name}{self.m}x{self.nbits}"

    @property
    def code_bytes(self) -> int:
        """Bytes of one code: ``ceil(m * nbits / 8)``."""
        return int(self._pq_index().pq.code_size)

    def _min_train_points(self) -> int:
        return int(2**self.nbits)

    # --------------------------------------------------------------------- codec
    @property
    def codebooks(self) -> F32:
        """Centroids ``(m, 2^nbits, dim / m)`` float32 of the trained product quantiser."""
        pq = self._pq_index().pq
        cb = faiss.vector_to_array(pq.centroids).astype(np.float32, copy=False)
        return cb.reshape(int(pq.M), int(pq.ksub), int(pq.dsub))

    def set_codebooks(self, codebooks: np.ndarray) -> None:
        """Use externally trained centroids ``(m, 2^nbits, dim / m)`` instead of ``train``.

        The index becomes trained and must be empty (codes made with other centroids would
        be stale). Only plain ``PQ`` (no OPQ rotation). Used by
        :func:`embedlab.training.bidr.train_bidr` (contrastively trained codebooks).
        """
        if type(self) is not PQ:
            raise TypeError(f"set_codebooks needs a plain PQ index, got {type(self).__name__}")
        if self.ntotal:
            raise ValueError(f"set_codebooks needs an empty index, got one holding {self.ntotal}")
        shape = (self.m, 2**self.nbits, self.dim // self.m)
        cb = np.asarray(codebooks)
        if cb.shape != shape:
            raise ValueError(f"codebooks must have shape {shape}, got shape {cb.shape}")
        if cb.dtype.kind != "f" or not np.isfinite(cb).all():
            raise ValueError(f"codebooks must be finite floats, got dtype {cb.dtype}")
        index = self._make()
        faiss.copy_array_to_vector(
            np.ascontiguousarray(cb, dtype=np.float32).ravel(), index.pq.centroids
        )
        index.is_trained = True
        self._index = index
        self._trained = True

    def encode(self, x: F32) -> npt.NDArray[np.uint8]:
        """Codes ``(n, code_bytes)`` uint8 of ``x (n, dim)`` as given (no normalisation; for
        OPQ, of vectors already rotated)."""
        codes: npt.NDArray[np.uint8] = self._pq_index().pq.compute_codes(
            np.ascontiguousarray(x, dtype=np.float32)
        )
        return codes

    def decode(self, codes: npt.NDArray[np.uint8]) -> F32:
        """Reconstructions ``(n, dim)`` float32 of ``codes (n, code_bytes)`` (see encode)."""
        out: F32 = self._pq_index().pq.decode(np.ascontiguousarray(codes, dtype=np.uint8))
        return out

    # --------------------------------------------------------------------- hooks
    def _train(self, x: F32) -> None:
        self._index = self._make()
        self._index.train(np.ascontiguousarray(x))

    def _add(self, x: F32, ids: I64) -> None:
        self._index.add(np.ascontiguousarray(x))

    def _search(self, q: F32, k: int) -> tuple[F32, I64]:
        dist, pos = self._index.search(np.ascontiguousarray(q), k)
        scores = -dist if self.metric == "l2" else dist
        scores = np.asarray(scores, dtype=np.float32)
        pos = np.asarray(pos, dtype=np.int64)
        # Best first, ties by position, so results do not depend on faiss' heap order.
        order = np.lexsort((pos, -scores), axis=-1)
        return np.take_along_axis(scores, order, 1), np.take_along_axis(pos, order, 1)

    def _remove(self, positions: I64) -> None:
        # IndexFlatCodes.remove_ids compacts the kept rows in order, so positions stay aligned.
        removed = self._index.remove_ids(faiss.IDSelectorBatch(positions.astype(np.int64)))
        if removed != positions.size:  # pragma: no cover - a faiss contract violation
            raise RuntimeError(f"faiss removed {removed} rows, expected {positions.size}")

    def _memory_bytes(self) -> int:
        pq = self._pq_index()
        codes = int(pq.ntotal) * int(pq.pq.code_size)
        codebooks = int(pq.pq.centroids.size()) * 4
        return codes + codebooks

    # --------------------------------------------------------------- persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        blob = faiss_to_blob(self._index)
        meta = {"m": self.m, "nbits": self.nbits, "seed": self.seed, "ntotal": self.ntotal}
        return {"faiss_index": blob}, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        obj = cls(
            meta["dim"], m=meta["m"], metric=meta["metric"], nbits=meta["nbits"], seed=meta["seed"]
        )
        index = faiss_from_blob(arrays["faiss_index"], folder)
        if index.d != obj.dim or index.ntotal != meta["ntotal"]:
            raise ValueError(
                f"{folder}: the saved faiss index has dim {index.d} and {index.ntotal} vectors, "
                f"index.json says dim {obj.dim} and {meta['ntotal']} vectors"
            )
        obj._index = index
        return obj


@register_index("OPQ")
class OPQ(PQ):
    """Optimised product quantisation: a learned rotation (``OPQMatrix``) before ``PQ{m}``.

    Same code size as :class:`PQ`; memory adds the ``dim x dim`` float32 rotation. Args and
    the training minimum are those of :class:`PQ`.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).standard_normal((1000, 32)).astype("float32")
        >>> index = OPQ(32, m=8, nbits=6); index.train(x); index.add(x)
        >>> index.search(x[:2], k=3)[1].shape
        (2, 3)
    """

    def _make(self) -> Any:
        index: Any = faiss.index_factory(
            self.dim, f"OPQ{self.m},PQ{self.m}x{self.nbits}", self._faiss_metric
        )
        inner: Any = faiss.downcast_index(index.index)
        inner.do_polysemous_training = False  # index_factory turns it on; we never use it
        self._configure(inner.pq)
        # The rotation is trained with its own seeded, quiet quantiser (OPQMatrix changes the
        # k-means iterations of the quantiser it trains with); kept alive by this reference.
        self._opq_pq = faiss.ProductQuantizer(self.dim, self.m, self.nbits)
        self._configure(self._opq_pq)
        opq: Any = faiss.downcast_VectorTransform(index.chain.at(0))
        opq.pq = self._opq_pq
        return index

    def _pq_index(self) -> Any:
        return faiss.downcast_index(self._index.index)

    def _memory_bytes(self) -> int:
        opq: Any = faiss.downcast_VectorTransform(self._index.chain.at(0))
        return super()._memory_bytes() + int(opq.A.size()) * 4
