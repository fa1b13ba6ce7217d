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

from pathlib import Path
from typing import Any, Self

import numpy as np

from embedlab._validation import check_choice, check_int, check_vector_ids
from embedlab.index._base import (
    F32,
    I64,
    Metric,
    VectorIndex,
    ids_set_aside,
    pad_results,
    register_index,
)
from embedlab.index._fde import FDE, MAX_FDE_DIM
from embedlab.index._token_sets import PackedSets, pack_sets
from embedlab.index._token_store import TokenStore
from embedlab.index.flat import Flat

__all__ = ["FDE", "MAX_FDE_DIM", "MUVERA", "load_muvera"]

_ADD_BYTES = 1 << 28  # FDE bytes handed to the inner index per add call
_METRICS = ("cos", "ip")


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
