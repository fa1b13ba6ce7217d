"""Sign-bit codes packed in uint64 words, searched asymmetrically (default) or by Hamming.

``scoring="asym"`` (default) scores the query against the +-1 code of each vector,
``q . s`` with ``s_j = +1`` where bit ``j`` is set, else ``-1``: the query keeps its
magnitudes, so only the documents are quantised (as in the asymmetric distance computation
of product quantisation, Jégou et al., TPAMI 2011). Two kernels:

- ``query_bits=6`` (default, 1-8): the query is quantised to ``2^bits`` levels per query and
  split into bit planes, so a code scores by ``bits`` AND + popcount per 64-bit word
  (:mod:`embedlab.index._bitplane`); the score is exactly ``q^ . s`` for the quantised query
  ``q^``, within ``sum_i |q_i - q^_i| <= dim * delta / 2`` of ``q . s``.
- ``query_bits=0``: the float query, through one table of 256 partial scores per code byte
  (:mod:`embedlab.index._scan`; 48 lookups per 384-bit code), exact.

Measured with ``python benchmarks/binary_asym.py`` (one thread, k=100 candidates, 2 shared
cores): on 100k x 384 synthetic codes the float kernel runs at 0.25x ``faiss.IndexBinaryFlat``,
the 4-, 5-, 6- and 8-bit kernels at 1.09x, 0.89x, 0.82x and 0.65x (Hamming 0.96x); on the
4,000 MiniLM DBpedia codes 0.39x and 0.87x / 0.77x / 0.75x / 0.74x. ``Binary,Rerank(Flat)``
recall@10 on DBpedia at k_factor 10: float query 0.9943, 4 bits 0.9938, 5 bits 0.9947,
6 bits 0.9942, 8 bits 0.9943, Hamming 0.9311 (first stage alone: 0.6349, 0.6268, 0.6325,
0.6342, 0.6353, 0.4794). Six bits is the default: its first stage is within 0.001 of the float
query's at 3x its speed.

``scoring="hamming"`` binarises the query too and ranks by Hamming distance. Kernel choice,
measured on 100k x 384-d random vectors, 1,000 queries, k=100, one thread (2 shared cores):
``faiss.knn_hamming`` on our packed words 1,380 q/s, ``faiss.IndexBinaryFlat`` 1,434 q/s,
numpy ``bitwise_count`` on XORed words 260 q/s (word by word into a uint16 accumulator; the
one-shot 3-D XOR 73 q/s). We call ``faiss.knn_hamming`` on a zero-copy uint8 view of our
codes: the speed of ``IndexBinaryFlat`` without a second copy of the codes.

``center=True`` subtracts the mean of the training vectors before taking signs (stored, 4
``dim`` bytes): the sign of a centred coordinate splits the data at its mean rather than at
0, so each bit carries more information when the embedding has a common offset. The index
then needs :meth:`train`. Under ``"hamming"`` the query is centred the same way; under
``"asym"`` it is not: with ``x ~ mean + a s``, ``q . x ~ q . mean + a q . s`` and ``q . mean``
is the same for every vector, so ``q . s`` still ranks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self, cast

import faiss
import numpy as np
import numpy.typing as npt

from embedlab._validation import check_choice, check_int_in_range
from embedlab.index._base import F32, I64, Metric, VectorIndex, register_index
from embedlab.index._bitplane import MAX_BITS, MAX_WORDS, bitplane_search
from embedlab.index._grow import Growing, grow
from embedlab.index._scan import scan_lut, sign_tables

__all__ = ["Binary", "asym_search", "hamming_search", "pack_signs"]

U64 = npt.NDArray[np.uint64]
Scoring = Literal["asym", "hamming"]
SCORINGS = ("asym", "hamming")
#: bits of the quantised query in the asymmetric scan (0: the float query, exact)
DEFAULT_QUERY_BITS = 6
# Queries per kernel call: their tables take 48 KiB each at 384-d (12 MiB per block).
_Q_BLOCK = 256


def pack_signs(x: F32) -> U64:
    """Sign bits of ``x (n, dim)`` (1 where ``x > 0``) packed into ``(n, ceil(dim / 64))`` words."""
    n, dim = x.shape
    words = -(-dim // 64)
    packed = np.packbits(x > 0, axis=1, bitorder="little")  # (n, ceil(dim / 8)) uint8
    out = np.zeros((n, words * 8), np.uint8)
    out[:, : packed.shape[1]] = packed
    return out.view(np.uint64)


def hamming_search(cq: U64, codes: U64, k: int) -> tuple[F32, I64]:
    """Top ``k`` rows of ``codes (n, W)`` by Hamming distance to ``cq (n_q, W)`` (packed words).

    Scores are ``-hamming`` float32, best first, ties by row position (faiss' kernel).
    """
    dist, pos = faiss.knn_hamming(cq.view(np.uint8), codes.view(np.uint8), k)
    scores = -np.asarray(dist, dtype=np.float32)
    pos = np.asarray(pos, dtype=np.int64)
    # Best first, ties by position, so results do not depend on faiss' heap order.
    order = np.lexsort((pos, -scores), axis=-1)
    return np.take_along_axis(scores, order, 1), np.take_along_axis(pos, order, 1)


def asym_search(q: F32, codes: U64, k: int) -> tuple[F32, I64]:
    """Top ``k`` rows of ``codes (n, W)`` by ``q . s`` (``s`` the +-1 code; ``q (n_q, d)``,
    ``d <= 64 W``), via per-byte lookup tables (:func:`embedlab.index._scan.scan_lut`)."""
    n = codes.shape[0]
    n_bytes = -(-q.shape[1] // 8)  # bytes past the query dims are padding, scored 0
    codes_u8 = codes.view(np.uint8)  # (n, 8 * words), little-endian bit order
    one_list = (np.zeros(1, np.int64), np.full(1, n, np.int64))
    out_s, out_p = [], []
    for s0 in range(0, q.shape[0], _Q_BLOCK):
        qb = q[s0 : s0 + _Q_BLOCK]
        tables = sign_tables(qb, n_bytes)  # (bq, n_bytes, 256)
        probes = np.zeros((qb.shape[0], 1), np.int64)
        bias = np.zeros((qb.shape[0], 1), np.float32)
        s, p = scan_lut(tables, codes_u8, *one_list, probes, bias, k)
        out_s.append(s)
        out_p.append(p)
    return np.concatenate(out_s), np.concatenate(out_p)


@register_index("Binary")
class Binary(VectorIndex):
    """Binary (sign) quantisation: ``dim / 8`` bytes per vector, 48 for 384-d.

    Scores (higher is better, whatever the metric; pair with ``Rerank(Flat)`` to re-score
    candidates with the full vectors):

    - ``scoring="asym"`` (default): ``q . s``, the query (normalised under ``"cos"``, then
      quantised to ``query_bits`` bits unless 0) against the +-1 sign code ``s`` of each
      vector. Under ``"l2"`` this is also the
      ranking by the distance to the code point, ``-|q - s|^2 = 2 q . s - |q|^2 - dim``
      (``|s|^2 = dim`` for every code), so the score stays ``q . s`` there too.
    - ``scoring="hamming"``: ``-hamming(sign(q), sign(x))``.

    Args:
        dim: vector dimension.
        metric: ``"cos"``, ``"ip"`` or ``"l2"``.
        scoring: ``"asym"`` or ``"hamming"`` (spec ``Binary(scoring=hamming)``). Indexes
            saved before this option existed load as ``"hamming"``.
        center: subtract the training mean before taking signs (spec
            ``Binary(center=true)``); the index then needs :meth:`train`.
        query_bits: bits per query coordinate in the asymmetric scan (spec
            ``Binary(query_bits=8)``); 0 scores with the float query (exact, about 3x
            slower). Codes over 2,048 dimensions always use the float query. Indexes saved
            before this option existed load with 0.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).standard_normal((100, 64)).astype("float32")
        >>> index = Binary(64); index.add(x)
        >>> int(index.search(x[:1], k=1)[1][0, 0])
        0
    """

    _codes = Growing()  # (ntotal, ceil(dim / 64)) uint64 packed sign bits

    def __init__(
        self,
        dim: int,
        *,
        metric: Metric = "cos",
        scoring: Scoring = "asym",
        center: bool = False,
        query_bits: int = DEFAULT_QUERY_BITS,
    ) -> None:
        super().__init__(dim, metric=metric)
        self.scoring: Scoring = check_choice("scoring", scoring, SCORINGS)  # type: ignore[assignment]
        self.query_bits = check_int_in_range(
            "query_bits",
            query_bits,
            0,
            MAX_BITS,
            why=" (bits of the quantised query; 0 = the float query)",
        )
        if not isinstance(center, bool | np.bool_):
            raise TypeError(f"center must be a bool, got {center!r}")
        self.center = bool(center)
        self._trained = not self.center
        self._mean: F32 = np.zeros(self.dim, np.float32)  # stays 0 without centring
        self._codes = np.zeros((0, -(-self.dim // 64)), np.uint64)

    def spec(self) -> str:
        opts = (["center=true"] if self.center else []) + (
            [] if self.scoring == "asym" else [f"scoring={self.scoring}"]
        )
        if self.scoring == "asym" and self.query_bits != DEFAULT_QUERY_BITS:
            opts.append(f"query_bits={self.query_bits}")
        return f"Binary({','.join(opts)})" if opts else "Binary"

    @property
    def mean(self) -> F32:
        """The vector subtracted before taking signs ``(dim,)`` (zeros unless ``center``)."""
        return self._mean

    def _min_train_points(self) -> int:
        return 1 if self.center else 0

    def _train(self, x: F32) -> None:
        if not self.center:
            return
        if self.ntotal:
            raise ValueError(
                f"{self.spec()} already holds {self.ntotal} vectors; training would change "
                "the mean their codes were centred with: train a new index instead"
            )
        self._mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)

    @property
    def codes(self) -> U64:
        """Packed sign bits ``(ntotal, ceil(dim / 64))`` uint64."""
        return cast(U64, self._codes)

    def _add(self, x: F32, ids: I64) -> None:
        grow(self, "_codes").append(pack_signs(x - self._mean if self.center else x))

    def _search(self, q: F32, k: int) -> tuple[F32, I64]:
        if self.scoring == "asym":
            if self.query_bits and self._codes.shape[1] <= MAX_WORDS:
                return bitplane_search(q, self._codes, k, self.query_bits)
            return asym_search(q, self._codes, k)
        return hamming_search(pack_signs(q - self._mean if self.center else q), self._codes, k)

    def _remove(self, positions: I64) -> None:
        self._codes = np.delete(self._codes, positions, axis=0)

    def _memory_bytes(self) -> int:
        return grow(self, "_codes").nbytes + (self._mean.nbytes if self.center else 0)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays: dict[str, np.ndarray] = {"codes": self._codes}
        if self.center:
            arrays["mean"] = self._mean
        meta = {"scoring": self.scoring, "center": self.center, "query_bits": self.query_bits}
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        # saved before asymmetric scoring existed: those indexes ranked by Hamming distance
        scoring = meta.get("scoring", "hamming")
        obj = cls(
            meta["dim"],
            metric=meta["metric"],
            scoring=scoring,
            center=meta.get("center", False),
            query_bits=meta.get("query_bits", 0),  # saved before query_bits: float queries
        )
        if obj.center:
            mean = np.asarray(arrays["mean"])
            if mean.dtype != np.float32 or mean.shape != (obj.dim,):
                raise ValueError(
                    f"mean must be float32 of shape ({obj.dim},), got {mean.dtype} {mean.shape}"
                )
            obj._mean = mean.copy()
        codes = np.ascontiguousarray(arrays["codes"])
        if codes.dtype != np.uint64 or codes.shape[1:] != obj._codes.shape[1:]:
            raise ValueError(
                f"codes must be uint64 of shape (n, {obj._codes.shape[1]}), "
                f"got {codes.dtype} {codes.shape}"
            )
        obj._codes = codes
        return obj
