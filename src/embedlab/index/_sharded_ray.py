"""The Ray side of :class:`~embedlab.index.sharded.ShardedIndex`: one actor per shard.

Ray is imported only here, and only when the Ray backend is asked for. Each actor holds one
index and answers ``train / add / search / remove / save`` calls; this class scatters a call
to the actors and gathers the answers, turning a dead actor into an error naming its shard.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RayShards", "require_ray"]

INSTALL = "pip install 'embedlab[ray]'"


def require_ray() -> Any:
    """The ``ray`` module, or an ImportError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError(f"backend='ray' needs Ray, which is not installed: {INSTALL}") from None
    return ray


class _ShardActor:
    """The code each Ray actor runs: one index, loaded from a saved folder."""

    def __init__(self) -> None:
        self.index: Any = None

    def load(self, path: str, child: str | None) -> bool:
        from embedlab.index.io import load_child, load_index

        self.index = load_index(path) if child is None else load_child(Path(path), child)
        return True

    def call(self, method: str, *args: Any) -> Any:
        attr = getattr(self.index, method)
        return attr(*args) if callable(attr) else attr

    def add(self, x: np.ndarray, ids: np.ndarray) -> int:
        self.index.add(x, ids)
        return int(self.index.ntotal)

    def search(
        self, q: np.ndarray, k: int, params: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        result: tuple[np.ndarray, np.ndarray] = self.index.search(q, k, **params)
        return result

    def write_tree(self, folder: str) -> str:
        from embedlab.index._save import _after_save, _write_tree

        path = Path(folder)
        path.mkdir()
        sha = _write_tree(self.index, path)
        _after_save(self.index, path)
        return sha


class RayShards:
    """``n`` Ray actors, each holding one shard index."""

    def __init__(self, n: int, *, address: str | None, num_cpus: float | None) -> None:
        ray = require_ray()
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        free = float(ray.available_resources().get("CPU", 0.0))
        deadline = time.monotonic() + 10.0  # actors just killed release their CPUs lazily
        while free < min(n * (num_cpus or 1.0), float(ray.cluster_resources().get("CPU", 0))):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
            free = float(ray.available_resources().get("CPU", 0.0))
        if num_cpus is None:  # share what is free; a pending actor would wait forever
            num_cpus = min(1.0, free / n)
        if num_cpus <= 0 or n * num_cpus > free + 1e-9:
            raise RuntimeError(
                f"the Ray cluster has {free:g} CPUs free, {n} shards x num_cpus={num_cpus:g} "
                "are needed; close other sharded indexes (ShardedIndex.close()) or pass a "
                "smaller num_cpus"
            )
        actor = ray.remote(num_cpus=num_cpus)(_ShardActor)
        self._ray = ray
        self.actors = [actor.remote() for _ in range(n)]

    def _get(self, refs: Sequence[Any]) -> list[Any]:
        out = []
        for i, ref in enumerate(refs):
            try:
                out.append(self._ray.get(ref))
            except self._ray.exceptions.RayActorError as exc:
                raise RuntimeError(
                    f"shard {i} (Ray actor) died: {str(exc).splitlines()[0]}; the other "
                    "shards' data is untouched, but this index cannot answer without it"
                ) from None
            except self._ray.exceptions.RayTaskError as exc:
                cause = exc.as_instanceof_cause()
                if isinstance(cause, ValueError | TypeError):
                    raise type(cause)(f"shard {i}: {cause}") from None
                raise
        return out

    def load_all(self, paths: str | Sequence[str]) -> None:
        """Load every actor's index: one folder for all (``str``) or a saved shard each."""
        if isinstance(paths, str):
            refs = [a.load.remote(paths, None) for a in self.actors]
        else:
            refs = [
                a.load.remote(str(Path(p).parent), Path(p).name)
                for a, p in zip(self.actors, paths, strict=True)
            ]
        self._get(refs)

    def call(self, shard: int, method: str, *args: Any) -> Any:
        return self._get([self.actors[shard].call.remote(method, *args)])[0]

    def call_all(self, method: str, *args: Any) -> list[Any]:
        return self._get([a.call.remote(method, *args) for a in self.actors])

    def add(self, parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> None:
        self._get([a.add.remote(x, ids) for a, (x, ids) in zip(self.actors, parts, strict=True)])

    def search(
        self, q: np.ndarray, k: int, params: dict[str, Any]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        ref = self._ray.put(q)
        return self._get([a.search.remote(ref, k, params) for a in self.actors])

    def write_trees(self, folders: Sequence[str]) -> dict[str, str]:
        shas = self._get(
            [a.write_tree.remote(f) for a, f in zip(self.actors, folders, strict=True)]
        )
        return {Path(f).name: sha for f, sha in zip(folders, shas, strict=True)}

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a)
        self.actors = []
