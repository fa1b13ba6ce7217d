"""``Rerank(Flat)`` stage: re-score an over-fetched candidate list with full vectors on disk.

This is the bi-granular design (BiDR, WWW 2022): the wrapped base index keeps compact codes in
RAM and returns ``k * k_factor`` candidates; the full float32 vectors live in a file that is
memory-mapped (``numpy.memmap``), so only the candidate rows are read when re-scoring.

The vectors file is a raw float32 file in ``storage`` (a folder; a private temporary folder
by default, deleted with the index). ``save`` writes it into the index folder as
``vectors.npy`` and the index then maps that file and deletes its working copy (the vectors
"move" into the index folder). A loaded index maps the saved file read-only; adding or
removing afterwards first copies it into a new working file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import numpy as np

from embedlab._validation import check_choice, check_int
from embedlab.index._base import (
    F32,
    I64,
    Metric,
    VectorIndex,
    ids_set_aside,
    register_index,
    topk_rows,
)
from embedlab.index._topk import rescore_rows
from embedlab.index._workfile import WorkingFile, check_mapped
from embedlab.index.flat import Flat, candidate_scores

__all__ = ["Rerank", "rescore_candidates"]

_BLOCK = 1 << 24  # float32 entries of gathered candidates per block (64 MiB)


def rescore_candidates(
    q: F32,
    positions: I64,
    fetch: Callable[[I64], np.ndarray],
    metric: Metric,
    k: int,
) -> tuple[F32, I64]:
    """Exact scores of each query against its candidate rows, best ``k`` first.

    Args:
        q: queries ``(n_q, dim)``.
        positions: candidate row positions ``(n_q, c)``; ``-1`` marks no candidate.
        fetch: returns the full vectors ``(m, dim)`` of sorted unique row positions ``(m,)``.
        metric: ``"cos"``/``"ip"`` (dot) or ``"l2"`` (negative squared distance).
        k: results per query.

    Returns:
        ``(scores (n_q, min(k, c)), positions (n_q, min(k, c)))``.
    """
    n_q, c = positions.shape
    dim = q.shape[1]
    bq = max(1, _BLOCK // max(1, c * dim))
    out_s, out_p = [], []
    for start in range(0, n_q, bq):
        pos = positions[start : start + bq]
        valid = pos >= 0
        uniq, inv = np.unique(np.where(valid, pos, 0), return_inverse=True)
        rows = np.asarray(fetch(uniq), dtype=np.float32)  # (m, dim), sorted reads
        cand = rows[inv.reshape(pos.shape)]  # (bq, c, dim)
        s = candidate_scores(q[start : start + bq], cand, metric)
        s[~valid] = -np.inf
        ts, cols = topk_rows(s, k)
        tp = np.take_along_axis(pos, cols, axis=1)
        tp[~np.isfinite(ts)] = -1
        out_s.append(ts)
        out_p.append(tp)
    return np.concatenate(out_s), np.concatenate(out_p)


@register_index("Rerank")
class Rerank(WorkingFile, VectorIndex):
    """Wrap ``base``; re-score its ``k * k_factor`` candidates with full vectors kept on disk.

    RAM holds the base index (e.g. 48-byte binary codes for 384-d) and ids; disk holds
    ``4 * dim`` bytes per vector.

    Args:
        dim: vector dimension.
        metric: ``"cos"``, ``"ip"`` or ``"l2"``; the base index must use the same.
        base: the candidate index (default: a ``Flat`` index, which makes the stage a no-op).
        k_factor: candidates fetched per wanted result (>= 1). The default 10 is measured
            (``benchmarks/binary_asym.py``): on MiniLM DBpedia (384-d, 4,000 documents,
            1,000 held-out queries) ``Binary,Rerank(Flat)`` with asymmetric scoring (the
            default) keeps recall@10 0.994 at 10 (k_factor 2 / 3 / 5 / 20: 0.835 / 0.911 /
            0.965 / 1.000); Hamming scoring (``Binary(scoring=hamming)``) needs 20 for 0.977
            (0.931 at 10). Cheaper codes than 1 bit/dim need more.
        storage: folder for the working vectors file (default: a private temporary folder).
        rescore: precision of the stored vectors; only ``"Flat"`` (float32).

    Example:
        >>> import numpy as np
        >>> from embedlab.index.binary import Binary
        >>> x = np.random.default_rng(0).standard_normal((500, 64)).astype("float32")
        >>> index = Rerank(64, base=Binary(64), k_factor=10); index.add(x)
        >>> int(index.search(x[:1], k=1)[1][0, 0]), index.disk_bytes()
        (0, 128000)
    """

    disk_arrays = frozenset({"vectors"})

    def __init__(
        self,
        dim: int,
        *,
        metric: Metric = "cos",
        base: VectorIndex | None = None,
        k_factor: int = 10,
        storage: str | Path | None = None,
        rescore: str = "Flat",
    ) -> None:
        super().__init__(dim, metric=metric)
        self.base = Flat(self.dim, metric=self.metric) if base is None else base
        if not isinstance(self.base, VectorIndex):
            raise TypeError(f"base must be a VectorIndex, got {type(self.base).__name__}")
        if self.base.dim != self.dim or self.base.metric != self.metric:
            raise ValueError(
                f"base must have dim={self.dim} and metric={self.metric!r}, got "
                f"dim={self.base.dim} and metric={self.base.metric!r}"
            )
        if self.base.ntotal:
            raise ValueError(f"base must be empty, got an index holding {self.base.ntotal}")
        self.k_factor = check_int("k_factor", k_factor, min_value=1)
        self.rescore = check_choice("rescore", rescore, ("Flat",))
        self._init_working_file(storage)

    # ------------------------------------------------------------ delegation
    @property
    def is_trained(self) -> bool:
        return self.base.is_trained

    def _min_train_points(self) -> int:
        return self.base._min_train_points()

    def spec(self) -> str:
        return f"{self.base.spec()},Rerank({self.rescore},k_factor={self.k_factor})"

    def _children(self) -> dict[str, VectorIndex]:
        return {"base": self.base}

    # ------------------------------------------------------------- storage
    @property
    def vectors_path(self) -> Path | None:
        """The working vectors file, or ``None`` while the vectors are the saved file."""
        return self._path

    def _fetch(self, positions: I64) -> np.ndarray:
        return self._rows(positions)

    # ---------------------------------------------------------------- hooks
    def _train(self, x: F32) -> None:
        self.base.train(x)

    def add_rescored(self, x: Any, rescore: Any, ids: Any = None) -> None:
        """Add ``x`` to the base (its codes) but keep ``rescore (n, dim)`` on disk for the
        re-scoring stage: a second-stage document vector per row (BiDR's dense stage, see
        :mod:`embedlab.training.bidr`). ``rescore`` is normalised like ``x`` for ``cos``."""
        r = self._prepare(rescore, "rescore")
        n = np.shape(x)[0] if np.ndim(x) == 2 else r.shape[0]  # add() checks a bad x
        if r.shape[0] != n:
            raise ValueError(f"rescore must have one row per row of x ({n}), got {r.shape[0]}")
        self._pending_rescore: F32 | None = r
        try:
            self.add(x, ids)
        finally:
            self._pending_rescore = None

    def _add(self, x: F32, ids: I64) -> None:
        if type(self.base).add is VectorIndex.add:  # x is prepared already: no second copy
            self.base._add_prepared(x, ids)
        else:
            self.base.add(x, ids)
        stored = getattr(self, "_pending_rescore", None)
        stored = x if stored is None else stored
        path = self._writable()
        n = self._vectors.shape[0] + x.shape[0]
        with open(path, "ab") as fh:
            fh.write(np.ascontiguousarray(stored).data)  # no bytes copy of the chunk
        self._map(n)

    def search_params(self) -> frozenset[str]:
        return self.base.search_params() | {"k_factor"}

    def _search(self, q: F32, k: int, **params: Any) -> tuple[F32, I64]:
        k_factor = check_int("k_factor", params.pop("k_factor", self.k_factor), min_value=1)
        n_cand = min(k * k_factor, self.ntotal)
        if "efSearch" in params:  # a graph base fetches n_cand candidates: at least that wide
            ef = check_int("efSearch", params["efSearch"], min_value=1)
            params["efSearch"] = max(ef, n_cand)
        if type(self.base).search is VectorIndex.search:
            # The base holds the same rows in the same order (it is added to and removed
            # from in step), so its row positions are ours: skip the ids round trip, and
            # score the candidates straight from the mapped file (no gathered copy).
            self.base._check_search_params(params)
            _, cand = (
                self.base._search(q, n_cand, **params) if params else self.base._search(q, n_cand)
            )
            check_mapped(self._vectors)
            vectors = np.asarray(self._vectors)
            return rescore_rows(q, vectors, np.asarray(cand), self.metric == "l2", k)
        _, cand_ids = self.base.search(q, n_cand, **params)
        return rescore_candidates(q, self._idmap.lookup(cand_ids), self._fetch, self.metric, k)

    def _remove(self, positions: I64) -> None:
        self.base.remove(self._idmap.take(positions))
        keep = np.ones(self._vectors.shape[0], dtype=bool)
        keep[positions] = False
        self._keep_rows(np.flatnonzero(keep))

    def _memory_bytes(self) -> int:
        return self.base.memory_bytes()

    def disk_bytes(self) -> int:
        return int(self._vectors.shape[0]) * self.dim * 4 + self.base.disk_bytes()

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        check_mapped(self._vectors)
        return {"vectors": self._vectors}, {"k_factor": self.k_factor, "rescore": self.rescore}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        from embedlab.index.io import load_child

        base = load_child(folder, "base")
        ntotal = base.ntotal
        with ids_set_aside(base):
            obj = cls(
                meta["dim"],
                metric=meta["metric"],
                base=base,
                k_factor=meta["k_factor"],
                rescore=meta["rescore"],
            )
        vectors = arrays["vectors"]
        if vectors.shape != (ntotal, obj.dim) or vectors.dtype != np.float32:
            raise ValueError(
                f"{folder / 'vectors.npy'} must hold float32 ({ntotal}, {obj.dim}), got "
                f"{vectors.dtype} {vectors.shape}"
            )
        obj._vectors = vectors
        return obj

    def _after_save(self, folder: Path) -> None:
        n = self._vectors.shape[0]
        if n:
            self._vectors = np.load(folder / "vectors.npy", mmap_mode="r", allow_pickle=False)
        self._set_file(None, None)
