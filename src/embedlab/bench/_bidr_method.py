"""``BiDR{m}``: the retrieval suite's BiDR method (``--methods bidr_pq48``).

BiDR is a *trainer* (:mod:`embedlab.training.bidr`), not an index type, so it has no token in
:func:`~embedlab.index.index_factory`. This adapter gives it the suite's index protocol:
``train(corpus)`` draws pseudo-queries from the corpus (each row's exact top-``k`` neighbours,
self excluded, are its positives; the held-out queries are never seen) and trains both stages
as ``benchmarks/bidr_dbpedia.py`` does; ``add(corpus)`` builds ``model.build_index(corpus)``
(a ``PQ{m},Rerank(Flat)`` over the trained codebooks and dense map); search, memory and disk
bytes come from that index.

Spec: ``BiDR{m}`` or ``BiDR{m}(key=value, ...)`` with the keys of :data:`BIDR_DEFAULTS`, e.g.
``BiDR48(pq_epochs=1, n_train=500)``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from embedlab._registry import parse_spec
from embedlab._validation import check_int
from embedlab.index import Metric
from embedlab.index.rerank import Rerank
from embedlab.training.bidr import BiDRModel, pseudo_queries, train_bidr

__all__ = [
    "BIDR_DEFAULTS",
    "BiDRMethod",
    "is_bidr_spec",
    "make_bidr_method",
    "parse_bidr_spec",
]

#: training settings of the suite's BiDR (those of ``benchmarks/bidr_dbpedia.py``)
BIDR_DEFAULTS: dict[str, int | float] = {
    "nbits": 8,
    "n_train": 1000,
    "k": 10,
    "pq_epochs": 3,
    "dense_epochs": 1,
    "n_hard": 16,
    "batch_size": 32,
    "lr": 1e-4,
    "k_factor": 10,
}
_SPEC = re.compile(r"^\s*BiDR(\d+)\s*(\(.*\))?\s*$", re.DOTALL)


def is_bidr_spec(spec: str) -> bool:
    """Whether ``spec`` names the BiDR method (``"BiDR48"``, ``"BiDR48(pq_epochs=1)"``)."""
    return isinstance(spec, str) and _SPEC.match(spec) is not None


class BiDRMethod:
    """BiDR trained on the corpus's pseudo-queries, served as ``PQ{m},Rerank(Flat)``.

    Args:
        dim: vector dimension (``m`` must divide it).
        m: PQ sub-quantisers (bytes per code).
        metric: ``"cos"``, ``"ip"`` or ``"l2"``.
        seed: seeds the pseudo-query draw and training.
        settings: overrides of :data:`BIDR_DEFAULTS`.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(300, 16)).astype("float32")
        >>> idx = BiDRMethod(16, 4, n_train=50, pq_epochs=1, dense_epochs=0)
        >>> idx.train(x); idx.add(x); idx.search(x[:2], 5)[1].shape
        (2, 5)
    """

    def __init__(
        self, dim: int, m: int, *, metric: Metric = "cos", seed: int = 0, **settings: Any
    ) -> None:
        self.dim = check_int("dim", dim, min_value=1)
        self.m = check_int("m", m, min_value=1)
        if dim % m:
            raise ValueError(f"m must divide dim={dim}, got m={m}")
        unknown = sorted(set(settings) - set(BIDR_DEFAULTS))
        if unknown:
            raise ValueError(
                f"BiDR setting must be one of {', '.join(sorted(BIDR_DEFAULTS))}, "
                f"got {', '.join(unknown)}"
            )
        self.metric: Metric = metric
        self.seed = check_int("seed", seed, min_value=0)
        self.settings: dict[str, Any] = {**BIDR_DEFAULTS, **settings}
        self.model: BiDRModel | None = None
        self.index: Rerank | None = None

    def train(self, corpus: np.ndarray) -> None:
        """Draw pseudo-queries from ``corpus (n, dim)`` and train both BiDR stages."""
        x = np.asarray(corpus, dtype=np.float32)
        s = self.settings
        n_train = min(int(s["n_train"]), x.shape[0])
        rows, pos = pseudo_queries(
            x, n_queries=n_train, k=int(s["k"]), metric=self.metric, seed=self.seed
        )
        self.model = train_bidr(
            x,
            x[rows],
            pos,
            query_rows=rows,
            m=self.m,
            nbits=int(s["nbits"]),
            metric=self.metric,
            pq_epochs=int(s["pq_epochs"]),
            dense_epochs=int(s["dense_epochs"]),
            k=int(s["k"]),
            k_factor=int(s["k_factor"]),
            n_hard=int(s["n_hard"]),
            batch_size=int(s["batch_size"]),
            lr=float(s["lr"]),
            seed=self.seed,
        )

    def add(self, corpus: np.ndarray) -> None:
        """Build the ``PQ{m},Rerank(Flat)`` index of ``corpus`` from the trained model."""
        if self.model is None:
            raise ValueError("BiDR must be trained before add: call train(corpus) first")
        self.index = self.model.build_index(corpus, k_factor=int(self.settings["k_factor"]))

    def _built(self) -> Rerank:
        if self.index is None:
            raise ValueError("BiDR index is empty: call train(corpus) then add(corpus) first")
        return self.index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` ``(scores, ids)`` of ``queries (n_q, dim)``, each ``(n_q, k)``."""
        scores, ids = self._built().search(queries, k)
        return np.asarray(scores), np.asarray(ids)

    def memory_bytes(self) -> int:
        """RAM bytes of the built index (PQ codes, codebooks, ids)."""
        return int(self._built().memory_bytes())

    def disk_bytes(self) -> int:
        """Disk bytes of the built index's re-ranking vectors."""
        return int(self._built().disk_bytes())


def parse_bidr_spec(spec: str) -> tuple[int, dict[str, Any]]:
    """``"BiDR48(pq_epochs=1)"`` -> ``(48, {"pq_epochs": 1})``; unknown settings are refused."""
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise ValueError(
            f"spec must look like BiDR{{m}} or BiDR{{m}}(key=value, ...), got {spec!r}"
        )
    _, kwargs = parse_spec(f"BiDR{match.group(2) or ''}")
    unknown = sorted(set(kwargs) - set(BIDR_DEFAULTS))
    if unknown:
        raise ValueError(
            f"BiDR setting must be one of {', '.join(sorted(BIDR_DEFAULTS))}, "
            f"got {', '.join(unknown)}"
        )
    return int(match.group(1)), kwargs


def make_bidr_method(dim: int, spec: str, *, metric: Metric = "cos", seed: int = 0) -> BiDRMethod:
    """Build the :class:`BiDRMethod` of a ``BiDR{m}[(key=value, ...)]`` spec."""
    m, kwargs = parse_bidr_spec(spec)
    return BiDRMethod(dim, m, metric=metric, seed=seed, **kwargs)
