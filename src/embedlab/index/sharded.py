"""``ShardedIndex``: one index per shard, in-process or one per Ray actor; exact top-k merge.

Every shard holds the same spec, trained once (on the driver) and copied, so the shards share
their quantisers; rows go to the shards round-robin; a search asks every shard for its top
``k`` and merges them exactly (best score first, ties by the lower id). For exact indexes
and for IVF (whose lists only split) the results equal one unsharded index of the same spec.

``backend="local"`` keeps the shards in this process (no dependency); ``backend="ray"``
puts each shard in a Ray actor (``pip install 'embedlab[ray]'``; a local cluster by default,
``address=`` for a running one) so building and searching run in parallel. Ray is the
engine: this module only scatters calls and merges results.

Saved as one index folder (see :mod:`embedlab.index._store`) whose data folder holds one
sub-folder per shard (``shard0``, ``shard1``, ...), each a complete index tree; with Ray
each actor writes its own shard (the folder must be on a file system every actor sees).
:func:`embedlab.index.load_index` loads it with the local backend;
:meth:`ShardedIndex.load` can put the shards back into Ray actors.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from embedlab._validation import check_choice, check_int
from embedlab.index._base import F32, I64, Metric, VectorIndex, register_index
from embedlab.index._grow import Growing, grow
from embedlab.index._sharded_ray import RayShards

__all__ = ["ShardedIndex"]

BACKENDS = ("local", "ray")


def merge_shard_results(
    results: Sequence[tuple[np.ndarray, np.ndarray]], k: int
) -> tuple[F32, I64]:
    """Exact top-``k`` of per-shard ``(scores, ids)`` lists: best first, ties by lower id."""
    s = np.concatenate([r[0] for r in results], axis=1)
    i = np.concatenate([r[1] for r in results], axis=1)
    s = np.where(i >= 0, s, -np.inf).astype(np.float32)
    order = np.lexsort((np.where(i >= 0, i, np.iinfo(np.int64).max), -s), axis=-1)[:, :k]
    return np.take_along_axis(s, order, 1), np.take_along_axis(i, order, 1)


@register_index("Sharded")
class ShardedIndex(VectorIndex):
    """``shards`` indexes of one ``spec`` behind the one index protocol.

    Args:
        dim: vector dimension.
        metric: ``"cos"``, ``"ip"`` or ``"l2"``.
        spec: the spec of every shard (``"IVF1024,Binary,Rerank(Flat)"``).
        shards: number of shards (>= 1).
        backend: ``"local"`` (in this process) or ``"ray"`` (one Ray actor per shard).
        address: a Ray cluster address (default: start or join a local one).
        num_cpus: CPUs reserved per actor (Ray backend; default: the free CPUs shared
            among the shards, at most 1 each).

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).standard_normal((300, 16)).astype("float32")
        >>> index = ShardedIndex(16, spec="Flat", shards=3); index.add(x)
        >>> int(index.search(x[:1], k=1)[1][0, 0]), index.ntotal
        (0, 300)
    """

    _shard_of = Growing()  # (ntotal,) int32: the shard holding each row

    def __init__(
        self,
        dim: int,
        *,
        metric: Metric = "cos",
        spec: str = "Flat",
        shards: int = 2,
        backend: str = "local",
        address: str | None = None,
        num_cpus: float | None = None,
    ) -> None:
        from embedlab.index.factory import index_factory

        super().__init__(dim, metric=metric)
        self.shard_spec = spec
        self.n_shards = check_int("shards", shards, min_value=1)
        self.backend = check_choice("backend", backend, BACKENDS)
        self._shard_of = np.zeros(0, np.int32)
        prototype = index_factory(dim, spec, metric=metric)
        self._local: list[VectorIndex] = []
        self._ray: RayShards | None = None
        if self.backend == "ray":
            self._ray = RayShards(self.n_shards, address=address, num_cpus=num_cpus)
        self._install(prototype)

    @classmethod
    def build(cls, spec: str, *, dim: int, shards: int = 2, **kwargs: Any) -> ShardedIndex:
        """``ShardedIndex(dim, spec=spec, shards=shards, **kwargs)``."""
        return cls(dim, spec=spec, shards=shards, **kwargs)

    # ---------------------------------------------------------------- shard set-up
    def _install(self, prototype: VectorIndex) -> None:
        """Make every shard a copy of the (empty) ``prototype`` via a saved folder."""
        with tempfile.TemporaryDirectory(prefix="embedlab-shard-") as tmp:
            prototype.save(Path(tmp) / "proto")
            if self._ray is not None:
                self._ray.load_all(str(Path(tmp) / "proto"))
            else:
                from embedlab.index.io import load_index

                self._local = [load_index(Path(tmp) / "proto") for _ in range(self.n_shards)]

    @property
    def is_trained(self) -> bool:
        if self._ray is not None:
            return all(self._ray.call_all("is_trained"))
        return all(s.is_trained for s in self._local)

    def spec(self) -> str:
        return self.shard_spec

    def _min_train_points(self) -> int:
        from embedlab.index.factory import index_factory

        return index_factory(self.dim, self.shard_spec, metric=self.metric)._min_train_points()

    def search_params(self) -> frozenset[str]:
        if self._ray is not None:
            return frozenset(self._ray.call(0, "search_params"))
        return self._local[0].search_params()

    # ------------------------------------------------------------------------ hooks
    def _train(self, x: F32) -> None:
        from embedlab.index.factory import index_factory

        if self.ntotal:
            raise ValueError(f"ShardedIndex holds {self.ntotal} vectors; train before adding")
        prototype = index_factory(self.dim, self.shard_spec, metric=self.metric)
        prototype.train(x)
        self._install(prototype)

    def _add(self, x: F32, ids: I64) -> None:
        start = self.ntotal
        shard = ((start + np.arange(x.shape[0])) % self.n_shards).astype(np.int32)
        parts = [np.flatnonzero(shard == s) for s in range(self.n_shards)]
        if self._ray is not None:
            self._ray.add([(x[p], ids[p]) for p in parts])
        else:
            for index, p in zip(self._local, parts, strict=True):
                index.add(x[p], ids[p])
        grow(self, "_shard_of").append(shard)

    def _search(self, q: F32, k: int, **params: Any) -> tuple[F32, I64]:
        if self._ray is not None:
            results = self._ray.search(q, k, params)
        else:
            results = [s.search(q, k, **params) for s in self._local]
        scores, ids = merge_shard_results(results, k)
        return scores, np.where(ids >= 0, self._idmap.lookup(ids), -1)

    def _remove(self, positions: I64) -> None:
        ids = self._idmap.take(positions)
        owner = self._shard_of[positions]
        for s in range(self.n_shards):
            mine = ids[owner == s]
            if mine.size == 0:
                continue
            if self._ray is not None:
                self._ray.call(s, "remove", mine)
            else:
                self._local[s].remove(mine)
        keep = np.ones(self.ntotal, dtype=bool)
        keep[positions] = False
        self._shard_of = self._shard_of[keep]

    def _memory_bytes(self) -> int:
        shard_bytes = (
            sum(self._ray.call_all("memory_bytes"))
            if self._ray is not None
            else sum(s.memory_bytes() for s in self._local)
        )
        return int(shard_bytes) + grow(self, "_shard_of").nbytes

    def disk_bytes(self) -> int:
        if self._ray is not None:
            return int(sum(self._ray.call_all("disk_bytes")))
        return sum(s.disk_bytes() for s in self._local)

    def shard_sizes(self) -> list[int]:
        """Vectors held by each shard."""
        return [int(c) for c in np.bincount(self._shard_of, minlength=self.n_shards)]

    # ------------------------------------------------------------------ persistence
    def _children(self) -> dict[str, VectorIndex]:
        return {f"shard{i}": s for i, s in enumerate(self._local)}

    def _write_children(self, folder: Path) -> dict[str, str] | None:
        """With Ray, each actor writes its own shard tree; returns their json checksums."""
        if self._ray is None:
            return None
        return self._ray.write_trees([str(folder / f"shard{i}") for i in range(self.n_shards)])

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        meta = {"shard_spec": self.shard_spec, "n_shards": self.n_shards}
        return {"shard_of": np.asarray(self._shard_of)}, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        from embedlab.index.io import load_child

        n = check_int("n_shards", meta["n_shards"], min_value=1)
        obj = cls.__new__(cls)
        VectorIndex.__init__(obj, meta["dim"], metric=meta["metric"])
        obj.shard_spec, obj.n_shards, obj.backend = str(meta["shard_spec"]), n, "local"
        obj._ray = None
        obj._local = [load_child(folder, f"shard{i}") for i in range(n)]
        shard_of = np.asarray(arrays["shard_of"])
        if shard_of.ndim != 1 or (shard_of.size and (shard_of.min() < 0 or shard_of.max() >= n)):
            raise ValueError(f"{folder / 'shard_of.npy'} must hold shard numbers in [0, {n})")
        obj._shard_of = shard_of.astype(np.int32)
        sizes = np.bincount(obj._shard_of, minlength=n)
        for i, s in enumerate(obj._local):
            if s.ntotal != sizes[i]:
                raise ValueError(
                    f"shard{i} of {folder} holds {s.ntotal} vectors, {sizes[i]} expected"
                )
        return obj

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        backend: str = "local",
        address: str | None = None,
        num_cpus: float | None = None,
    ) -> ShardedIndex:
        """Load a saved ``ShardedIndex``; ``backend="ray"`` moves each shard into an actor."""
        from embedlab.index.io import data_folder, load_index

        index = load_index(path)
        if not isinstance(index, ShardedIndex):
            raise ValueError(f"{path} holds a {type(index).__name__} index, not a ShardedIndex")
        if check_choice("backend", backend, BACKENDS) == "ray":
            index._ray = RayShards(index.n_shards, address=address, num_cpus=num_cpus)
            data = data_folder(path)
            index._ray.load_all([str(data / f"shard{i}") for i in range(index.n_shards)])
            index._local, index.backend = [], "ray"
        return index

    def close(self) -> None:
        """Stop the Ray actors (a no-op for the local backend)."""
        if self._ray is not None:
            self._ray.close()
