"""Multi-aspect documents: one vector per named aspect, searched by aspect or weighted mix.

A document may have several embeddings (title and body, image and caption, ...). With
inner-product scores a weighted mix of per-aspect similarities is itself one inner
product::

    sum_a w_a <q_a, d_a> = < [w_1 q_1, ..., w_A q_A], [d_1, ..., d_A] >

so :class:`MultiAspectIndex` stores the concatenated aspect vectors in ONE inner index and
turns every query into a weighted concatenation (a weight of 0 removes an aspect). Any
inner index whose scores are linear in the query works (``Flat``, ``Int8``, ``PQ``,
``OPQ``, and a ``Rerank(Flat)`` stage); ``Binary`` / ``BEBR`` score by Hamming distance and
are refused. With ``metric="cos"`` each aspect vector is normalised on its own, so the mix
is a weighted sum of per-aspect cosines.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np

from embedlab._validation import check_int, check_vectors
from embedlab.index._base import F32, I64, IdMap, Metric, VectorIndex, l2_normalize, register_index

__all__ = ["MultiAspectIndex"]

_LINEAR = ("Flat", "Int8", "PQ", "OPQ", "Rerank")


@register_index("MultiAspect")
class MultiAspectIndex(VectorIndex):
    """Documents with one vector per aspect; search one aspect or a weighted combination.

    Args:
        aspects: ``{name: dim}`` in a fixed order, e.g. ``{"title": 384, "body": 384}``.
        spec: factory spec of the inner index over the concatenated vectors (default
            ``"Flat"``); it must score by inner product.
        metric: ``"cos"`` (each aspect normalised separately) or ``"ip"``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> index = MultiAspectIndex({"title": 8, "body": 16})
        >>> def docs(n):
        ...     return {"title": rng.standard_normal((n, 8)), "body": rng.standard_normal((n, 16))}
        >>> index.add(docs(20))
        >>> q = docs(2)
        >>> index.search(q, k=3, weights={"title": 0.3, "body": 0.7})[1].shape
        (2, 3)
    """

    def __init__(
        self, aspects: Mapping[str, int], *, spec: str = "Flat", metric: Metric = "cos"
    ) -> None:
        from embedlab.index.factory import index_factory, parse_index_spec

        if not isinstance(aspects, Mapping) or not aspects:
            raise ValueError(f"aspects must be a non-empty {{name: dim}} mapping, got {aspects!r}")
        self.aspects: dict[str, int] = {
            str(name): check_int(f"dim of aspect {name!r}", d, min_value=1)
            for name, d in aspects.items()
        }
        if metric not in ("cos", "ip"):
            raise ValueError(
                f"metric must be 'cos' or 'ip' (a weighted mix of l2 distances is not one "
                f"search), got {metric!r}"
            )
        for token, _ in parse_index_spec(spec):
            if token not in _LINEAR:
                raise ValueError(
                    f"spec must build an inner-product index ({', '.join(_LINEAR)}); "
                    f"{token} scores by Hamming distance, got {spec!r}"
                )
        total = sum(self.aspects.values())
        super().__init__(total, metric=metric)  # before self.inner: see _idmap
        self.inner = index_factory(total, spec, metric="ip")
        self._offsets = np.cumsum([0, *self.aspects.values()])

    # The ids live in the inner index; this wrapper shares them.
    @property  # type: ignore[override]
    def _idmap(self) -> IdMap:
        return self.inner._idmap

    @_idmap.setter
    def _idmap(self, value: IdMap) -> None:
        if "inner" in self.__dict__:
            self.inner._idmap = value

    @property
    def is_trained(self) -> bool:
        return self.inner.is_trained

    def spec(self) -> str:
        return f"MultiAspect({self.inner.spec()})"

    # ------------------------------------------------------------------ public API
    def train(self, vectors: Any) -> None:
        """Train the inner index on documents given as ``{aspect: (n, dim)}``."""
        self.inner.train(self._concat(vectors, "vectors", weights=None))

    def add(self, vectors: Any, ids: Any = None) -> None:
        """Add documents: ``{aspect: (n, dim_a)}`` with every aspect present."""
        self.inner.add(self._concat(vectors, "vectors", weights=None), ids)

    def search(  # type: ignore[override]
        self,
        q: Any,
        k: int,
        *,
        weights: Mapping[str, float] | None = None,
        aspect: str | None = None,
    ) -> tuple[F32, I64]:
        """Top ``k`` documents for queries ``{aspect: (n_q, dim_a)}``.

        ``aspect="title"`` searches that aspect alone (only it needs a query);
        ``weights={"title": 0.3, "body": 0.7}`` mixes the aspects (missing ones weigh 0);
        neither: every aspect with weight 1. Scores are the weighted sums of per-aspect
        scores.
        """
        if aspect is not None and weights is not None:
            raise ValueError("give either aspect or weights, not both")
        if aspect is not None:
            self._check_aspect(aspect)
            weights = {aspect: 1.0}
        if weights is None:
            weights = dict.fromkeys(self.aspects, 1.0)
        else:
            for name, w in weights.items():
                self._check_aspect(name)
                if not np.isfinite(w):
                    raise ValueError(f"weights[{name!r}] must be finite, got {w}")
            if not any(float(w) != 0.0 for w in weights.values()):
                raise ValueError(f"weights must not all be 0, got {dict(weights)}")
        return self.inner.search(self._concat(q, "queries", weights=weights), k)

    # ------------------------------------------------------------------ helpers
    def _check_aspect(self, name: str) -> None:
        if name not in self.aspects:
            raise ValueError(f"aspect must be one of {sorted(self.aspects)}, got {name!r}")

    def _concat(self, vectors: Any, what: str, *, weights: Mapping[str, float] | None) -> F32:
        if not isinstance(vectors, Mapping):
            raise TypeError(
                f"{what} must be a {{aspect: array}} mapping, got {type(vectors).__name__}"
            )
        for name in vectors:
            self._check_aspect(name)
        needed = [a for a in self.aspects if weights is None or float(weights.get(a, 0.0)) != 0.0]
        missing = [a for a in needed if a not in vectors]
        if missing:
            raise ValueError(f"{what} must give every aspect in use; missing {missing}")
        rows = {int(np.shape(vectors[a])[0]) if np.ndim(vectors[a]) == 2 else -1 for a in needed}
        if len(rows) != 1 or -1 in rows:
            raise ValueError(
                f"{what} must be 2-d arrays with the same number of rows for every aspect, "
                f"got shapes { {a: np.shape(vectors[a]) for a in needed} }"
            )
        n = rows.pop()
        out = np.zeros((n, self.dim), dtype=np.float32)
        for i, (name, d) in enumerate(self.aspects.items()):
            if name not in needed:
                continue
            block = check_vectors(f"{what}[{name!r}]", vectors[name], d)
            if self.metric == "cos" and n:
                block = l2_normalize(block)
            w = 1.0 if weights is None else float(weights.get(name, 0.0))
            out[:, self._offsets[i] : self._offsets[i + 1]] = w * block
        return out

    # ------------------------------------------------------------- protocol hooks
    def _remove(self, positions: I64) -> None:
        self.inner._remove(positions)

    def _memory_bytes(self) -> int:
        return self.inner._memory_bytes()

    def disk_bytes(self) -> int:
        return self.inner.disk_bytes()

    def _children(self) -> dict[str, VectorIndex]:
        return {"inner": self.inner}

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {"aspects": list(self.aspects.items()), "inner_spec": self.inner.spec()}

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        from embedlab.index.io import load_child

        obj = cls(dict(meta["aspects"]), spec="Flat", metric=meta["metric"])
        obj.inner = load_child(folder, "inner")
        if obj.inner.dim != obj.dim:
            raise ValueError(
                f"{folder / 'index.json'} is corrupted: inner index dim {obj.inner.dim} != "
                f"sum of aspect dims {obj.dim}"
            )
        return obj
