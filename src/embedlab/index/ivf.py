"""``IVF{nlist}``: inverted-file index, a coarse k-means quantiser over a code index.

Paper: Jégou, Douze, Schmid, "Product quantization for nearest neighbor search", TPAMI 2011
(the IVFADC system, section IV). ``nlist`` centroids split the space into cells; a vector
is stored, encoded by the code index, in the list of its best centroid; a query scores the
``nprobe`` best centroids and scans only their lists.

Choices:

- Coarse quantiser: ``faiss.Kmeans`` (seeded, 10 iterations, spherical under ``"cos"`` so
  centroids are unit vectors) on the training sample (at most ``max_train`` vectors, a seeded
  sample). Vectors go to, and queries probe, the centroids by the index's score: dot product
  for ``"ip"`` / ``"cos"`` (as faiss' IVF with an inner-product quantiser), negative squared
  distance for ``"l2"``.
- Codes: ``Flat``, ``Int8``, ``Binary``, ``PQ{m}`` (8 bits), ``BEBR{bits}``; Int8 and PQ
  encode the residual ``x - c`` (trained on the residuals of the training sample), the others
  the vector itself (:mod:`embedlab.index._ivf_codecs` says why).
- Scores are those of the code: ``q . x_hat`` for ``"ip"`` / ``"cos"``, ``-|q - x_hat|^2``
  for ``"l2"`` (``|x_hat|^2`` stored per vector, 4 bytes); Binary and BEBR keep their own
  scores (``q . s``, the cosine of decoded codes) whatever the metric.
- Storage: one codes array with a region per list (:mod:`embedlab.index._ivf_lists`),
  int32 rows (4 bytes per vector) to map a code back to its insertion-order row.
- Scan: numba kernels (:mod:`embedlab.index._scan`), parallel over queries, a top-k heap per
  query.

Measured with ``benchmarks/ivf_vs_faiss.py`` (one thread, 2 shared cores; faiss
``IndexIVFPQ`` + ``IndexRefineFlat`` at the same nlist / m / nprobe / k_factor 10, l2):
1M x 384 Gaussian mixture (``--separation 1.0``), ``IVF4096,PQ48,Rerank(Flat)``: recall@10
0.955 at 1,430 queries/s (nprobe 128; faiss 0.952 at 901), 62.8 RAM bytes/vector (faiss 1,800
with its float vectors and precomputed table), 1.00-1.52x faiss' queries/s at equal recall;
200k x 128 ``IVF1024,PQ16,Rerank(Flat)``: 1.11-1.31x. ``IVF4096,Binary,Rerank(Flat)`` (residual
signs, ``--code binary --metric cos``, unit vectors) on 1M x 384: recall@10 0.952 at 3,317
queries/s (nprobe 32; faiss ``IVF4096,PQ48`` + refine 0.952 at 2,434), 62.4 RAM bytes/vector,
1.37-1.38x faiss at equal recall on one thread and 1.30-1.44x on two (nprobe 16-32); the
plain sign codes (``residual=false``, l2) stopped at 0.83 whatever nprobe. 10M x 128
``IVF4096,PQ16,Rerank(Flat)`` (l2): 24.2 bytes/vector,
recall@10 0.820 at 1,017 queries/s (nprobe 32; faiss 0.819 at 779), build 212 s vs 111 s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import faiss
import numpy as np

from embedlab._validation import check_int, check_int_in_range, check_optional_int
from embedlab.index._base import F32, I64, Metric, VectorIndex, ids_set_aside, register_index
from embedlab.index._ivf_codecs import make_codec
from embedlab.index._ivf_lists import InvertedLists
from embedlab.index._scan import scan_dot, scan_lut
from embedlab.index._topk import run_blocks, top_lists
from embedlab.index.binary import Binary
from embedlab.index.flat import Flat

__all__ = ["IVF"]

# as faiss' IVF coarse quantisers; 20 iterations doubled the training time for +0.001 to
# +0.002 recall@10 (benchmarks/ivf_vs_faiss.py, 200k x 128, nprobe 8 .. 128)
KMEANS_ITERATIONS = 10
DEFAULT_NPROBE = 8
_Q_BLOCK = 256  # queries per kernel call (LUT tables: 48 KiB each for 48-byte codes)
_BLOCK = 1 << 24  # entries of a vectors x centroids score block
_ADD_BLOCK = 1 << 16  # vectors encoded at a time


@register_index("IVF")
class IVF(VectorIndex):
    """Inverted file: k-means cells, each a list of codes; search scans ``nprobe`` lists.

    RAM per vector: the code (e.g. 48 bytes for ``PQ48``), a 4-byte row number, 4 bytes of
    ``|x_hat|^2`` under ``"l2"``; shared: ``nlist x dim`` float32 centroids and the code's
    codebooks. Adding keeps amortised ``O(n)`` copies (lists grow in place).

    Args:
        dim: vector dimension.
        metric: ``"cos"``, ``"ip"`` or ``"l2"``; the code index must use the same.
        code: an empty code index (default ``Flat``); see the module docstring.
        nlist: number of lists (k-means centroids); training needs at least this many
            vectors.
        nprobe: lists scanned per query, in ``[1, nlist]`` (default ``min(8, nlist)``);
            ``search(q, k, nprobe=...)`` overrides it. When those lists hold fewer than
            ``k`` vectors the next best lists are scanned too, so a search returns
            ``min(k, ntotal)`` results (faiss pads with ``-1`` instead).
        seed: seeds k-means and the training sample.
        max_train: train on at most this many vectors (a seeded sample; default all).
        residual: for ``Binary`` codes only: ``True`` (default) stores the signs of ``x - c``
            with a scale per code (4 more bytes per vector), ``False`` the signs of ``x``
            (spec ``IVF1024(residual=false),Binary``); other codes have one form.

    Example:
        >>> import numpy as np
        >>> from embedlab.index import index_factory
        >>> x = np.random.default_rng(0).standard_normal((2000, 32)).astype("float32")
        >>> index = index_factory(32, "IVF16,PQ8", metric="l2")
        >>> index.train(x); index.add(x)
        >>> index.spec(), index.search(x[:2], k=5, nprobe=4)[1].shape
        ('IVF16,PQ8', (2, 5))
    """

    needs_training = True

    def __init__(
        self,
        dim: int,
        *,
        metric: Metric = "cos",
        code: VectorIndex | None = None,
        nlist: int,
        nprobe: int | None = None,
        seed: int = 0,
        max_train: int | None = None,
        residual: bool | None = None,
    ) -> None:
        super().__init__(dim, metric=metric)
        self.nlist = check_int("nlist", nlist, min_value=1)
        if nprobe is None:
            nprobe = min(DEFAULT_NPROBE, self.nlist)
        self.nprobe = check_int_in_range("nprobe", nprobe, 1, self.nlist, why=" (nlist)")
        self.seed = check_int("seed", seed, min_value=0)
        self.max_train = check_optional_int("max_train", max_train, min_value=1)
        self.code = Flat(self.dim, metric=self.metric) if code is None else code
        if not isinstance(self.code, VectorIndex):
            raise TypeError(f"code must be a VectorIndex, got {type(self.code).__name__}")
        if self.code.dim != self.dim or self.code.metric != self.metric:
            raise ValueError(
                f"code must have dim={self.dim} and metric={self.metric!r}, got "
                f"dim={self.code.dim} and metric={self.code.metric!r}"
            )
        if self.code.ntotal:
            raise ValueError(f"code must be empty, got an index holding {self.code.ntotal}")
        if residual is not None and not isinstance(residual, bool | np.bool_):
            raise TypeError(f"residual must be a bool or None, got {residual!r}")
        self.codec = make_codec(self.code, residual=None if residual is None else bool(residual))
        # sized by training: nlist alone allocates nothing (an untrained index has 0 lists)
        self.centroids: F32 = np.zeros((0, self.dim), np.float32)
        self._c_sq: F32 = np.zeros(0, np.float32)
        self.lists = self._empty_lists()

    def _empty_lists(self) -> InvertedLists:
        extra = tuple(self.codec.per_code) + (("vbias",) if self._l2_terms else ())
        n_lists = self.centroids.shape[0]
        return InvertedLists(n_lists, self.codec.width, self.codec.dtype, extra)

    @property
    def _l2_terms(self) -> bool:
        return self.metric == "l2" and not self.codec.metric_free

    # ------------------------------------------------------------------- info
    def spec(self) -> str:
        default = min(DEFAULT_NPROBE, self.nlist)
        args = [f"nprobe={self.nprobe}"] if self.nprobe != default else []
        args += [f"seed={self.seed}"] if self.seed else []
        args += [f"max_train={self.max_train}"] if self.max_train is not None else []
        args += [] if self.codec.residual or type(self.code) is not Binary else ["residual=false"]
        head = f"IVF{self.nlist}" + (f"({','.join(args)})" if args else "")
        return f"{head},{self.code.spec()}"

    def search_params(self) -> frozenset[str]:
        return frozenset({"nprobe"})

    def list_sizes(self) -> I64:
        """Vectors per list ``(nlist,)`` (``(0,)`` before training)."""
        return self.lists.sizes.copy()

    def _min_train_points(self) -> int:
        # nlist is checked in _train, with a message that names it
        return max(1, self.code._min_train_points())

    def _children(self) -> dict[str, VectorIndex]:
        return {"code": self.code}

    # ------------------------------------------------------------------ coarse
    def _coarse(self, x: F32) -> F32:
        """Scores ``(n, nlist)`` of vectors against the centroids (``|x|^2`` left out for l2)."""
        s = x @ self.centroids.T
        if self.metric == "l2":
            s *= 2
            s -= self._c_sq[None, :]
        return s

    def _assign(self, x: F32) -> I64:
        """Best list of each vector ``(n,)`` (ties: the lower list)."""
        step = max(1, _BLOCK // self.nlist)
        out = [np.argmax(self._coarse(x[s : s + step]), axis=1) for s in range(0, len(x), step)]
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)

    # ------------------------------------------------------------------- hooks
    def _train(self, x: F32) -> None:
        n = x.shape[0]
        if n < self.nlist:
            raise ValueError(
                f"{self.spec()} needs at least nlist={self.nlist} training vectors (one per "
                f"list), got {n}"
            )
        if self.max_train is not None and n > self.max_train:
            rng = np.random.default_rng(self.seed)
            x = x[np.sort(rng.choice(n, self.max_train, replace=False))]
        km = faiss.Kmeans(
            self.dim,
            self.nlist,
            niter=KMEANS_ITERATIONS,
            seed=self.seed,
            spherical=self.metric == "cos",
            min_points_per_centroid=1,
            verbose=False,
        )
        km.train(np.ascontiguousarray(x))
        self.centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
        self._c_sq = np.einsum("ij,ij->i", self.centroids, self.centroids)
        if self.codec.residual:
            self.codec.fit(x - self.centroids[self._assign(x)])
        else:
            self.codec.fit(x)
        self.lists = self._empty_lists()

    def _add(self, x: F32, ids: I64) -> None:
        lists = self._assign(x)
        self.lists.reserve(np.bincount(lists, minlength=self.nlist))
        # blocks bound the temporaries (residuals, reconstructions) for large adds
        for s0 in range(0, x.shape[0], _ADD_BLOCK):
            block = slice(s0, s0 + _ADD_BLOCK)
            self._add_block(x[block], lists[block], self.ntotal + s0)

    def _add_block(self, x: F32, lists: I64, first_row: int) -> None:
        v = x - self.centroids[lists] if self.codec.residual else x
        codes, extra = self.codec.encode(v)
        if self._l2_terms:
            x_hat = self.codec.decode(codes, extra)
            if self.codec.residual:  # (residual codecs decode into a new array)
                x_hat += self.centroids[lists]
            extra["vbias"] = -np.einsum("ij,ij->i", x_hat, x_hat).astype(np.float32)
        rows = np.arange(first_row, first_row + x.shape[0], dtype=np.int64)
        self.lists.add(lists, codes, rows, extra)

    def _search(self, q: F32, k: int, **params: Any) -> tuple[F32, I64]:
        nprobe = check_int_in_range(
            "nprobe", params.get("nprobe", self.nprobe), 1, self.nlist, why=" (nlist)"
        )
        starts = range(0, q.shape[0], _Q_BLOCK)
        results: list[tuple[F32, I64] | None] = [None] * len(starts)

        def block(i: int) -> None:
            s0 = starts[i]
            results[i] = self._search_block(q[s0 : s0 + _Q_BLOCK], k, nprobe)

        run_blocks(block, len(starts))  # whole blocks in parallel (set-up and kernel)
        done = [r for r in results if r is not None]
        return np.concatenate([s for s, _ in done]), np.concatenate([r for _, r in done])

    def _search_block(self, q: F32, k: int, nprobe: int) -> tuple[F32, I64]:
        qc = q @ self.centroids.T  # (bq, nlist)
        coarse = 2 * qc - self._c_sq[None, :] if self.metric == "l2" else qc
        probes = self._probes(coarse, nprobe, k)
        side, qconst = self.codec.query(q)
        bias = np.broadcast_to(qconst[:, None], probes.shape).astype(np.float32)
        if self.codec.residual:  # q . x_hat = q . c + q . v_hat
            bias += np.take_along_axis(qc, probes, axis=1)
        if self._l2_terms:  # -|q - x_hat|^2 = 2 q . x_hat - |q|^2 - |x_hat|^2
            side = side * 2
            bias = bias * 2 - np.einsum("ij,ij->i", q, q)[:, None]
        lists = self.lists
        rows = lists.rows
        vbias = lists.extra.get("vbias")
        args = (lists.starts, lists.sizes, probes, bias.astype(np.float32), k)
        if self.codec.kind == "lut":
            vscale = lists.extra.get("vscale")
            return scan_lut(side, lists.codes, *args, vbias=vbias, vscale=vscale, rows=rows)
        return scan_dot(side, lists.codes, *args, vbias=vbias, rows=rows)

    def _probes(self, coarse: F32, nprobe: int, k: int) -> I64:
        """Lists to scan ``(bq, >= nprobe)``, ``-1`` padded: the ``nprobe`` best centroids,
        then the next best until the lists hold ``k`` vectors (so a search finds
        ``min(k, ntotal)`` results, as exact search does)."""
        probes = top_lists(coarse, nprobe)  # (bq, nprobe), ties: the lower list
        sizes = self.lists.sizes
        short = np.flatnonzero(sizes[probes].sum(axis=1) < k)
        if not short.size or nprobe == self.nlist:
            return probes
        order = np.argsort(-coarse[short], axis=1, kind="stable")  # (n_short, nlist)
        enough = np.cumsum(sizes[order], axis=1) >= k
        need = np.where(enough.any(axis=1), np.argmax(enough, axis=1) + 1, self.nlist)
        width = int(need.max())
        out = np.full((probes.shape[0], width), -1, np.int64)
        out[:, :nprobe] = probes
        keep = np.arange(width)[None, :] < need[:, None]
        out[short] = np.where(keep, order[:, :width], -1)
        return out

    def _remove(self, positions: I64) -> None:
        self.lists.remove(positions)

    def _memory_bytes(self) -> int:
        coarse = self.centroids.nbytes + self._c_sq.nbytes
        return int(self.lists.nbytes + coarse + self.code.memory_bytes())

    # ------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        codes, rows, sizes, extra = self.lists.packed()
        arrays = {"centroids": self.centroids, "codes": codes, "rows": rows, "list_sizes": sizes}
        arrays.update({f"code_{name}": arr for name, arr in extra.items()})
        meta = {
            "ntotal": self.ntotal,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "seed": self.seed,
            "max_train": self.max_train,
            "residual": self.codec.residual,
        }
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        from embedlab.index.io import load_child

        code = load_child(folder, "code")
        with ids_set_aside(code):
            obj = cls(
                meta["dim"],
                metric=meta["metric"],
                code=code,
                nlist=meta["nlist"],
                nprobe=meta["nprobe"],
                seed=meta["seed"],
                max_train=meta["max_train"],
                # saved before residual sign codes: Binary lists held signs of the vectors
                residual=meta.get("residual", False) if type(code) is Binary else None,
            )
        obj._set_state(arrays, folder, int(meta["ntotal"]))
        return obj

    def _set_state(self, arrays: dict[str, np.ndarray], folder: Path, ntotal: int) -> None:
        """Check the saved arrays against each other and install them."""
        where = folder / "index.json"
        centroids = np.asarray(arrays["centroids"])
        sizes = np.asarray(arrays["list_sizes"])
        codes = np.asarray(arrays["codes"])
        rows = np.asarray(arrays["rows"])
        n_lists = centroids.shape[0] if centroids.ndim == 2 else -1
        if n_lists not in (0, self.nlist) or centroids.shape[1:] != (self.dim,):
            raise ValueError(
                f"{where}: centroids must be float32 ({self.nlist}, {self.dim}) (or (0, "
                f"{self.dim}) untrained), got {centroids.dtype} {centroids.shape}"
            )
        if centroids.dtype != np.float32:
            raise ValueError(f"{where}: centroids must be float32, got {centroids.dtype}")
        if sizes.shape != (n_lists,) or sizes.dtype != np.int64 or (sizes < 0).any():
            raise ValueError(
                f"{where}: list_sizes must be {n_lists} int64 counts >= 0, got "
                f"{sizes.dtype} {sizes.shape}"
            )
        n = int(sizes.sum())
        if n != ntotal:
            raise ValueError(f"{where}: list_sizes sum to {n}, the index holds {ntotal}")
        width, dtype = self.codec.width, self.codec.dtype
        if codes.shape != (n, width) or codes.dtype != dtype:
            raise ValueError(
                f"{where}: codes must be {dtype} ({n}, {width}) (list_sizes sum to {n}), got "
                f"{codes.dtype} {codes.shape}"
            )
        if rows.shape != (n,) or rows.dtype != np.int64 or not _is_permutation(rows):
            raise ValueError(f"{where}: rows must hold each of 0 .. {n - 1} once (int64)")
        extra: dict[str, F32] = {}
        for name in self._empty_lists().per_code:
            arr = np.asarray(arrays[f"code_{name}"])
            if arr.shape != (n,) or arr.dtype != np.float32:
                raise ValueError(
                    f"{where}: code_{name} must be float32 ({n},), got {arr.dtype} {arr.shape}"
                )
            extra[name] = arr
        self.centroids = np.ascontiguousarray(centroids)
        self._c_sq = np.einsum("ij,ij->i", self.centroids, self.centroids)
        self.lists = self._empty_lists()
        self.lists.set_packed(codes, rows, sizes, extra)


def _is_permutation(rows: I64) -> bool:
    seen = np.zeros(rows.size, bool)
    ok = rows.size == 0 or (int(rows.min()) >= 0 and int(rows.max()) < rows.size)
    if ok:
        seen[rows] = True
    return bool(ok and seen.all())
