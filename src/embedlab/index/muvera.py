"""MUVERA: multi-vector retrieval through Fixed Dimensional Encodings (FDEs).

Dhulipala, Hadian, Jayaram, Lee, Mirrokni, "MUVERA: Multi-Vector Retrieval via Fixed
Dimensional Encodings", NeurIPS 2024. A set of vectors (a query's or a document's token
embeddings) is mapped to ONE vector so that ``<FDE_q(Q), FDE_d(P)>`` approximates the Chamfer
similarity ``sum_{q in Q} max_{p in P} <q, p>``; any single-vector index then retrieves
candidates, which are re-ranked with exact Chamfer.

The encoding, per repetition ``r = 1..R`` (fresh randomness each time):

1. SimHash partition: ``k_sim`` Gaussian hyperplanes ``g_1..g_k``; vector ``x`` gets the sign
   code ``c(x) = (1[<g_1,x> > 0], ..., 1[<g_k,x> > 0])`` (``g_1`` the most significant bit) and
   lands in bucket ``b(x) = gray_decode(c(x))``, one of ``B = 2^k_sim`` (the Gray-code
   numbering of the reference implementation: bucket ``b`` holds the code ``b ^ (b >> 1)``,
   so neighbouring bucket numbers differ in one hyperplane).
2. Inner projection ``psi(x) = S x / sqrt(d_proj)``, ``S`` uniform in ``{-1, +1}^(d_proj x
   dim)``; the identity when ``d_proj == dim``.
3. Block ``b`` of the query FDE is the SUM of ``psi(q)`` over the query vectors in bucket ``b``;
   of the document FDE the AVERAGE of ``psi(p)`` over the document's vectors in bucket ``b``.
   An empty document bucket takes ``psi(p)`` of the document vector whose sign code is
   nearest in Hamming distance to the bucket's code (the first such vector on ties); empty
   query buckets stay zero.

Buckets are concatenated, then repetitions: ``d_FDE = R * 2^k_sim * d_proj`` (index
``r * B * d_proj + b * d_proj + j``). An optional final projection to ``d_final`` uses a
Count Sketch (coordinate ``i`` is added with a random sign to output ``h(i)``), as the
reference code does; it preserves inner products in expectation.

:class:`MUVERA` is the multi-vector index: FDEs in any single-vector index (the spec after
the ``MUVERA(...)`` token, default ``Flat``), optionally followed by ``Rerank(Chamfer)``, which
keeps the documents' vectors packed in a float32 file on disk (memory-mapped, like
``Rerank(Flat)``) and re-scores the ``C`` best FDE candidates with exact Chamfer::

    index = index_factory(384, "MUVERA(r=20,k=5,p=16),Rerank(Chamfer)")
    index.add_multi(doc_token_matrices)          # list of (m_i, 384) arrays
    scores, ids = index.search_multi(query_token_matrices, k=10, candidates=100)

Why a ``VectorIndex`` subclass with extra methods: ``index_factory`` returns a
``VectorIndex`` and saving goes through :mod:`embedlab.index.io`'s hooks, so MUVERA reuses
both; the protocol's ``add(x)`` / ``search(q)`` treat each row as a set of ONE vector (then
Chamfer is the inner product), so a MUVERA index is still a valid single-vector index.
It is registered, so :func:`~embedlab.index.load_index` (or :func:`load_muvera`) loads it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import numpy.typing as npt

from embedlab._validation import (
    check_bool,
    check_choice,
    check_int,
    check_int_in_range,
    check_optional_int,
    check_vector_ids,
)
from embedlab.index._base import (
    F32,
    I64,
    Metric,
    VectorIndex,
    ids_set_aside,
    pad_results,
    register_index,
)
from embedlab.index.chamfer import PackedSets, TokenStore, pack_sets
from embedlab.index.flat import Flat

__all__ = ["FDE", "MAX_FDE_DIM", "MUVERA", "load_muvera"]

MAX_K_SIM = 30
MAX_FDE_DIM = 1 << 22
"""Largest ``R * 2^k_sim * d_proj`` accepted (4M float32 = 16 MiB per encoded set)."""
_ENCODE_ROWS = 1 << 14  # vectors per block while encoding ...
_ENCODE_CELLS = 1 << 22  # ... and at most this many (vector, bucket) or (set, FDE entry) cells
_ADD_BYTES = 1 << 28  # FDE bytes handed to the inner index per add call
_METRICS = ("cos", "ip")


def _hamming_to_buckets(code: I64, gray: I64, bits: int) -> npt.NDArray[np.int32]:
    """``(t, B)`` Hamming distances between sign codes ``code (t,)`` and bucket codes ``gray``."""
    if bits <= 8:  # table lookup: (2^bits, B)
        c = np.arange(1 << bits, dtype=np.int64)[:, None] ^ gray[None, :]
        table = np.zeros(c.shape, np.int32)
        for i in range(bits):
            table += ((c >> i) & 1).astype(np.int32)
        return table[code]
    x = code[:, None] ^ gray[None, :]
    out = np.zeros(x.shape, np.int32)
    for i in range(bits):
        out += ((x >> i) & 1).astype(np.int32)
    return out


class FDE:
    """Fixed Dimensional Encodings of vector sets (MUVERA); see the module docstring.

    Args:
        dim: vector dimension.
        r: repetitions ``R`` (>= 1).
        k: SimHash hyperplanes ``k_sim`` per repetition, ``0 <= k <= 30``; ``2^k`` buckets.
        p: inner projection dimension ``d_proj`` (>= 1); ``p == dim`` means no projection.
        d_final: optional final Count-Sketch dimension (``None``: no final projection).
        seed: seeds the hyperplanes, the projections and the sketch (independent streams, so
            changing ``p`` keeps the hyperplanes).
        fill_empty: fill empty document buckets by the Hamming rule (the paper; ``False``
            leaves them zero, for ablations).

    Example:
        >>> import numpy as np
        >>> fde = FDE(16, r=4, k=3, p=8)
        >>> fde.fde_dim, fde.output_dim
        (256, 256)
        >>> rng = np.random.default_rng(0)
        >>> docs = [rng.standard_normal((5, 16)) for _ in range(3)]
        >>> fde.encode_documents(docs).shape, fde.encode_queries(docs[:1]).shape
        ((3, 256), (1, 256))
    """

    def __init__(
        self,
        dim: int,
        *,
        r: int = 20,
        k: int = 5,
        p: int = 16,
        d_final: int | None = None,
        seed: int = 0,
        fill_empty: bool = True,
    ) -> None:
        self.dim = check_int("dim", dim, min_value=1)
        self.r = check_int("r", r, min_value=1)
        self.k = check_int_in_range(
            "k", k, 0, MAX_K_SIM, why=" (k_sim: 2^k SimHash buckets per repetition)"
        )
        self.p = check_int("p", p, min_value=1)
        self.d_final = check_optional_int("d_final", d_final, min_value=1)
        self.seed = check_int("seed", seed, min_value=0)
        self.fill_empty = check_bool("fill_empty", fill_empty)
        self.buckets = 1 << self.k
        self.fde_dim = self.r * self.buckets * self.p
        if self.fde_dim > MAX_FDE_DIM:
            raise ValueError(
                f"FDE dimension r * 2^k * p must be <= {MAX_FDE_DIM}, got "
                f"{self.r} * 2^{self.k} * {self.p} = {self.fde_dim}; lower r, k or p"
            )
        hyper_rng, proj_rng, sketch_rng = (
            np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(3)
        )
        # (dim, r * k): column r * k + i is hyperplane i of repetition r
        self.hyperplanes: F32 = hyper_rng.standard_normal((self.dim, self.r * self.k)).astype(
            np.float32
        )
        # (r, dim, p) in {-1, +1}; empty when p == dim (identity)
        self.signs: npt.NDArray[np.int8] = (
            np.zeros((0, self.dim, self.p), np.int8)
            if self.identity
            else (proj_rng.integers(0, 2, (self.r, self.dim, self.p), dtype=np.int8) * 2 - 1)
        )
        if self.d_final is None:
            self.sketch_hash: I64 = np.zeros(0, np.int64)
            self.sketch_sign: npt.NDArray[np.int8] = np.zeros(0, np.int8)
        else:
            self.sketch_hash = sketch_rng.integers(0, self.d_final, self.fde_dim, dtype=np.int64)
            self.sketch_sign = sketch_rng.integers(0, 2, self.fde_dim, dtype=np.int8) * 2 - 1
        self._cache()

    def _cache(self) -> None:
        if self.identity:
            self._proj: F32 = np.zeros((self.dim, 0), np.float32)
        else:
            # (dim, r * p): all repetitions' projections in one matmul
            scaled = self.signs.astype(np.float32) / np.float32(math.sqrt(self.p))
            self._proj = np.ascontiguousarray(scaled.transpose(1, 0, 2).reshape(self.dim, -1))
        self._gray = np.arange(self.buckets, dtype=np.int64) ^ (
            np.arange(self.buckets, dtype=np.int64) >> 1
        )
        self._bit_weights = (1 << np.arange(self.k - 1, -1, -1, dtype=np.int64)).astype(np.int64)
        if self.d_final is not None:
            order = np.argsort(self.sketch_hash, kind="stable")
            sh = self.sketch_hash[order]
            starts = np.flatnonzero(np.r_[True, sh[1:] != sh[:-1]])
            self._sk_order = order
            self._sk_starts = starts
            self._sk_targets = sh[starts]

    @property
    def identity(self) -> bool:
        """No inner projection (``p == dim``)."""
        return self.p == self.dim

    @property
    def output_dim(self) -> int:
        """Length of an encoding: ``d_final`` if set, else ``r * 2^k * p``."""
        return self.d_final if self.d_final is not None else self.fde_dim

    def spec_args(self) -> str:
        """``"r=20,k=5,p=16"`` plus the non-default options, as in a spec string."""
        out = f"r={self.r},k={self.k},p={self.p}"
        if self.d_final is not None:
            out += f",d_final={self.d_final}"
        if self.seed != 0:
            out += f",seed={self.seed}"
        if not self.fill_empty:
            out += ",fill_empty=false"
        return out

    # -- encoding
    def encode_queries(self, sets: Any) -> F32:
        """Query FDEs ``(n, output_dim)``: per bucket the SUM of the projected vectors."""
        return self.encode(pack_sets(sets, self.dim, name="queries"), "query")

    def encode_documents(self, sets: Any) -> F32:
        """Document FDEs ``(n, output_dim)``: per bucket the AVERAGE, empty buckets filled."""
        return self.encode(pack_sets(sets, self.dim, name="documents"), "document")

    def encode(self, sets: PackedSets, kind: Literal["query", "document"]) -> F32:
        """FDEs of validated packed sets (every set non-empty), in blocks of documents."""
        document = check_choice("kind", kind, ("document", "query")) == "document"
        n = len(sets)
        out = np.zeros((n, self.output_dim), np.float32)
        max_rows = max(1, min(_ENCODE_ROWS, _ENCODE_CELLS // self.buckets))
        max_sets = max(1, _ENCODE_CELLS // self.fde_dim)
        a = 0
        while a < n:
            # whole sets, about max_rows vectors, at least one set
            b = int(np.searchsorted(sets.offsets, sets.offsets[a] + max_rows, "right")) - 1
            b = min(max(b, a + 1), a + max_sets, n)
            rows = sets.vectors[sets.offsets[a] : sets.offsets[b]]
            offs = sets.offsets[a : b + 1] - sets.offsets[a]
            fde = self._encode_block(np.asarray(rows, np.float32), offs, document)
            out[a:b] = self._final(fde)
            a = b
        return out

    def _encode_block(self, x: F32, offsets: I64, document: bool) -> F32:
        n = offsets.shape[0] - 1
        t = x.shape[0]
        bsz, p = self.buckets, self.p
        set_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))  # (t,)
        bits = ((x @ self.hyperplanes) > 0).reshape(t, self.r, self.k)  # (t, r, k)
        # sign codes (hyperplane 1 = most significant bit) and their Gray-decoded buckets
        codes = (bits * self._bit_weights).sum(axis=2)  # (t, r)
        buckets = (np.bitwise_xor.accumulate(bits, axis=2) * self._bit_weights).sum(axis=2)
        proj_all = x if self.identity else x @ self._proj  # (t, p) or (t, r * p)
        out = np.zeros((self.r, n, bsz, p), np.float32)
        for rep in range(self.r):
            code, bucket = codes[:, rep], buckets[:, rep]
            vals = proj_all if self.identity else proj_all[:, rep * p : (rep + 1) * p]
            key = set_of * bsz + bucket  # (t,) flat (set, bucket)
            order = np.argsort(key, kind="stable")
            sk = key[order]
            starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
            block = out[rep].reshape(n * bsz, p)  # a view: out[rep] is contiguous
            block[sk[starts]] = np.add.reduceat(vals[order], starts, axis=0)
            if not document:
                continue
            counts = np.bincount(key, minlength=n * bsz)
            block /= np.maximum(counts, 1).astype(np.float32)[:, None]
            empty = counts == 0
            if not self.fill_empty or not bool(empty.any()):
                continue
            # the nearest vector of the set (Hamming distance of sign codes to the bucket's
            # code), first one on ties: minimise distance * t + vector number per set
            ham = _hamming_to_buckets(code, self._gray, self.k)  # (t, B)
            ham *= t
            ham += np.arange(t, dtype=np.int32)[:, None]
            first = np.minimum.reduceat(ham, offsets[:-1], axis=0).reshape(-1) % t  # (n * B,)
            block[empty] = vals[first[empty]]
        # (r, n, B, p) -> (n, r, B, p): buckets concatenated, then repetitions
        return np.ascontiguousarray(out.transpose(1, 0, 2, 3)).reshape(n, self.fde_dim)

    def _final(self, fde: F32) -> F32:
        if self.d_final is None:
            return fde
        out = np.zeros((fde.shape[0], self.d_final), np.float32)
        signed = fde[:, self._sk_order] * self.sketch_sign[self._sk_order].astype(np.float32)
        out[:, self._sk_targets] = np.add.reduceat(signed, self._sk_starts, axis=1)
        return out

    # -- persistence
    def state(self) -> dict[str, np.ndarray]:
        """The random arrays to save, by file name (``fde_hyperplanes``, ``fde_signs``,
        ``fde_sketch_hash``, ``fde_sketch_sign``); see :meth:`restore`.
        """
        return {
            "fde_hyperplanes": self.hyperplanes,
            "fde_signs": self.signs,
            "fde_sketch_hash": self.sketch_hash,
            "fde_sketch_sign": self.sketch_sign,
        }

    def meta(self) -> dict[str, Any]:
        """The constructor keywords except ``dim`` (JSON-safe), for saving."""
        return {
            "r": self.r,
            "k": self.k,
            "p": self.p,
            "d_final": self.d_final,
            "seed": self.seed,
            "fill_empty": self.fill_empty,
        }

    def restore(self, arrays: dict[str, np.ndarray], where: Path) -> None:
        """Use saved random matrices (identical results across numpy versions)."""
        for name, mine in self.state().items():
            arr = arrays.get(name)
            if arr is None or arr.shape != mine.shape or arr.dtype != mine.dtype:
                got = "nothing" if arr is None else f"{arr.dtype} {arr.shape}"
                raise ValueError(
                    f"{where / (name + '.npy')} must hold {mine.dtype} {mine.shape}, got {got}"
                )
        self.hyperplanes = np.ascontiguousarray(arrays["fde_hyperplanes"])
        self.signs = np.ascontiguousarray(arrays["fde_signs"])
        self.sketch_hash = np.ascontiguousarray(arrays["fde_sketch_hash"])
        self.sketch_sign = np.ascontiguousarray(arrays["fde_sketch_sign"])
        self._cache()

    def nbytes(self) -> int:
        """RAM bytes of the random arrays, with the cached float32 projection matrix."""
        return sum(int(a.nbytes) for a in self.state().values()) + int(self._proj.nbytes)


@register_index("MUVERA")
class MUVERA(VectorIndex):
    """Multi-vector index: FDEs in a single-vector index, optional exact Chamfer re-ranking.

    Usually built by ``index_factory(dim, "MUVERA(r=20,k=5,p=16)[,INNER][,Rerank(Chamfer)]")``.

    Args:
        dim: dimension of the set vectors (token embeddings).
        metric: ``"cos"`` (every vector L2-normalised, as ColBERT does) or ``"ip"``.
        inner: the single-vector index of the FDEs: ``output_dim`` wide, metric ``"ip"``,
            empty (default: ``Flat``).
        r, k, p, d_final, seed, fill_empty: the encoding, see :class:`FDE`.
        rerank: ``"Chamfer"`` keeps the document vectors (on disk) and re-scores candidates
            with exact Chamfer; ``None`` returns the FDE inner products.
        k_factor: candidates re-scored per wanted result (``C = k * k_factor``), unless
            ``search_multi(..., candidates=C)`` says otherwise.
        storage: folder for the document vectors file (default: a private temporary folder).

    RAM: the inner index (``4 * output_dim`` bytes per document for ``Flat``), ids and 8
    bytes of offsets per document; disk: ``4 * dim`` bytes per document vector.

    Example:
        >>> import numpy as np
        >>> from embedlab.index import index_factory
        >>> rng = np.random.default_rng(0)
        >>> docs = [rng.standard_normal((8, 32)) for _ in range(200)]
        >>> index = index_factory(32, "MUVERA(r=10,k=3,p=8),Rerank(Chamfer)")
        >>> index.add_multi(docs)
        >>> scores, ids = index.search_multi(docs[:2], k=5)
        >>> ids[:, 0].tolist(), index.spec()
        ([0, 1], 'MUVERA(r=10,k=3,p=8),Flat,Rerank(Chamfer,k_factor=10)')
    """

    disk_arrays = frozenset({"tokens"})

    def __init__(
        self,
        dim: int,
        *,
        metric: Metric = "cos",
        inner: VectorIndex | None = None,
        r: int = 20,
        k: int = 5,
        p: int = 16,
        d_final: int | None = None,
        seed: int = 0,
        fill_empty: bool = True,
        rerank: str | None = None,
        k_factor: int = 10,
        storage: str | Path | None = None,
    ) -> None:
        super().__init__(dim, metric=metric)
        if self.metric not in _METRICS:
            raise ValueError(
                f"metric must be one of cos, ip (Chamfer sums inner products); got {metric!r}"
            )
        self.encoder = FDE(
            self.dim, r=r, k=k, p=p, d_final=d_final, seed=seed, fill_empty=fill_empty
        )
        out_dim = self.encoder.output_dim
        self.inner: VectorIndex = Flat(out_dim, metric="ip") if inner is None else inner
        if not isinstance(self.inner, VectorIndex):
            raise TypeError(f"inner must be a VectorIndex, got {type(self.inner).__name__}")
        if self.inner.dim != out_dim or self.inner.metric != "ip":
            raise ValueError(
                f"inner must have dim={out_dim} (the FDE dimension) and metric='ip', got "
                f"dim={self.inner.dim} and metric={self.inner.metric!r}"
            )
        if self.inner.ntotal:
            raise ValueError(f"inner must be empty, got an index holding {self.inner.ntotal}")
        self.rerank = None if rerank is None else check_choice("rerank", rerank, ("Chamfer",))
        self.k_factor = check_int("k_factor", k_factor, min_value=1)
        self.storage = None if storage is None else Path(storage)
        self._store: TokenStore | None = (
            TokenStore(self.dim, storage=self.storage) if self.rerank else None
        )

    # -------------------------------------------------------------- delegation
    @property
    def is_trained(self) -> bool:
        return self.inner.is_trained

    def _min_train_points(self) -> int:
        return self.inner._min_train_points()

    @property
    def r(self) -> int:
        """Repetitions ``R`` of the FDE encoder."""
        return self.encoder.r

    @property
    def k(self) -> int:
        """SimHash hyperplanes per repetition (``2^k`` buckets)."""
        return self.encoder.k

    @property
    def p(self) -> int:
        """Inner projection dimension ``d_proj`` of the FDE encoder."""
        return self.encoder.p

    def spec(self) -> str:
        out = f"MUVERA({self.encoder.spec_args()}),{self.inner.spec()}"
        if self.rerank:
            out += f",Rerank({self.rerank},k_factor={self.k_factor})"
        return out

    def _children(self) -> dict[str, VectorIndex]:
        return {"inner": self.inner}

    @property
    def tokens(self) -> TokenStore | None:
        """The stored document vectors (``None`` without ``Rerank(Chamfer)``)."""
        return self._store

    # -------------------------------------------------------- multi-vector API
    def _prepare_sets(self, sets: Any, name: str) -> PackedSets:
        packed = pack_sets(sets, self.dim, name=name)
        return packed.normalized() if self.metric == "cos" and len(packed) else packed

    def train_multi(self, sets: Any) -> None:
        """Train the inner index (e.g. PQ) on the FDEs of document sets."""
        packed = self._prepare_sets(sets, "documents")
        need = self._min_train_points()
        if len(packed) < need:
            raise ValueError(
                f"{self.spec()} needs at least {need} training sets, got {len(packed)}"
            )
        if self.inner.needs_training and self.ntotal:
            raise ValueError(
                f"{self.spec()} already holds {self.ntotal} sets; train a new index instead"
            )
        self._train_packed(packed)
        self._trained = True

    def add_multi(self, sets: Any, ids: Any = None) -> None:
        """Add document sets (``(m_i, dim)`` matrices) with ``ids (n,)`` (default sequential)."""
        packed = self._prepare_sets(sets, "documents")
        n = len(packed)
        if ids is None:
            id_arr = self._idmap.new_ids(n)
        else:
            id_arr = check_vector_ids("ids", ids, n)
            self._idmap.check_new(id_arr)
        if not self.is_trained:
            raise ValueError(
                f"{self.spec()} must be trained before add: call train_multi(sets) first"
            )
        if n == 0:
            return
        self._add_packed(packed, id_arr)
        self._idmap.append(id_arr)

    def search_multi(
        self, queries: Any, k: int, *, candidates: int | None = None, **params: Any
    ) -> tuple[F32, I64]:
        """The ``k`` best documents per query set: ``(scores, ids)``, each ``(n_q, k)``.

        Args:
            queries: query sets, ``(m_i, dim)`` matrices.
            k: results per query (>= 1); missing results are ``-1`` / ``-inf``.
            candidates: FDE candidates re-scored with exact Chamfer (``>= k``; default
                ``k * k_factor``); only with ``Rerank(Chamfer)``.
            params: search settings of the inner index (``nprobe=`` for ``IVF``, ...).

        Scores are exact Chamfer with ``Rerank(Chamfer)``, else FDE inner products.
        """
        k = check_int("k", k, min_value=1)
        self._check_search_params(params)
        if candidates is not None:
            if self.rerank is None:
                raise ValueError(
                    "candidates needs a Rerank(Chamfer) stage; this index returns FDE scores"
                )
            candidates = check_int("candidates", candidates, min_value=1)
            if candidates < k:
                raise ValueError(f"candidates must be >= k ({k}), got {candidates}")
        q = self._prepare_sets(queries, "queries")
        k = self.result_width(k)
        n_q = len(q)
        kk = min(k, self.ntotal)
        if kk == 0 or n_q == 0:
            return pad_results(np.zeros((n_q, 0), np.float32), np.zeros((n_q, 0), np.int64), k)
        scores, pos = self._search_packed(q, kk, candidates, **params)
        ids = np.where(pos >= 0, self._idmap.take(np.maximum(pos, 0)), -1)
        return pad_results(scores, ids, k)

    # -------------------------------------------------------------- internals
    def _train_packed(self, packed: PackedSets) -> None:
        self.inner.train(self.encoder.encode(packed, "document"))

    def _add_packed(self, packed: PackedSets, ids: I64) -> None:
        step = max(1, _ADD_BYTES // (4 * self.encoder.output_dim))
        for a in range(0, len(packed), step):
            b = min(a + step, len(packed))
            part = PackedSets(
                packed.vectors[packed.offsets[a] : packed.offsets[b]],
                packed.offsets[a : b + 1] - packed.offsets[a],
            )
            self.inner.add(self.encoder.encode(part, "document"), ids[a:b])
        if self._store is not None:
            self._store.append(packed)

    def search_params(self) -> frozenset[str]:
        return self.inner.search_params()

    def _search_packed(
        self, q: PackedSets, k: int, candidates: int | None, **params: Any
    ) -> tuple[F32, I64]:
        qf = self.encoder.encode(q, "query")
        if self._store is None:
            s, inner_ids = self.inner.search(qf, k, **params)
            return s, self._idmap.lookup(inner_ids)
        c = min(candidates if candidates is not None else k * self.k_factor, self.ntotal)
        _, cand_ids = self.inner.search(qf, max(c, k), **params)
        cand = self._idmap.lookup(cand_ids)  # (n_q, c) rows, -1 for none
        return self._store.rerank_many(q, [row[row >= 0] for row in cand], k)

    # ---------------------------------------- single-vector protocol: sets of one vector
    def _packed_rows(self, x: F32) -> PackedSets:
        return PackedSets(x, np.arange(x.shape[0] + 1, dtype=np.int64))

    def _train(self, x: F32) -> None:
        self._train_packed(self._packed_rows(x))

    def _add(self, x: F32, ids: I64) -> None:
        self._add_packed(self._packed_rows(x), ids)

    def _search(self, q: F32, k: int, **params: Any) -> tuple[F32, I64]:
        return self._search_packed(self._packed_rows(q), k, None, **params)

    def _remove(self, positions: I64) -> None:
        self.inner.remove(self._idmap.take(positions))
        if self._store is not None:
            self._store.remove(positions)

    def _memory_bytes(self) -> int:
        store = self._store.ram_bytes() if self._store is not None else 0
        return self.inner.memory_bytes() + self.encoder.nbytes() + store

    def disk_bytes(self) -> int:
        store = self._store.disk_bytes() if self._store is not None else 0
        return store + self.inner.disk_bytes()

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = dict(self.encoder.state())
        if self._store is not None:
            arrays.update(self._store.state())
        meta = {**self.encoder.meta(), "rerank": self.rerank, "k_factor": self.k_factor}
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        from embedlab.index.io import load_child

        inner = load_child(folder, "inner")
        with ids_set_aside(inner):
            obj = cls(
                meta["dim"],
                metric=meta["metric"],
                inner=inner,
                r=meta["r"],
                k=meta["k"],
                p=meta["p"],
                d_final=meta["d_final"],
                seed=meta["seed"],
                fill_empty=meta["fill_empty"],
                rerank=meta["rerank"],
                k_factor=meta["k_factor"],
            )
        obj.encoder.restore(arrays, folder)
        if obj._store is not None:
            if "tokens" not in arrays or "token_offsets" not in arrays:
                raise ValueError(f"{folder / 'index.json'} lists no tokens / token_offsets arrays")
            obj._store.restore(arrays["tokens"], arrays["token_offsets"], folder)
            if len(obj._store) != inner.ntotal:
                raise ValueError(
                    f"{folder}: {len(obj._store)} token sets but {inner.ntotal} inner vectors"
                )
        return obj

    def _after_save(self, folder: Path) -> None:
        if self._store is not None:
            self._store.after_save(folder)


def load_muvera(path: str | Path) -> MUVERA:
    """Load a :class:`MUVERA` index saved with ``index.save(path)`` (same as ``load_index``).

    Raises:
        ValueError: the folder is not a MUVERA index, or a file is missing or altered.
    """
    from embedlab.index.io import load_index

    index = load_index(path)
    if not isinstance(index, MUVERA):
        raise ValueError(f"{path} holds a {type(index).__name__} index, not MUVERA")
    return index
