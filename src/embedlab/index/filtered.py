"""Filtered vector search: attribute predicates with pre-, post- and in-graph filtering.

``FilteredIndex`` keeps, next to the vectors, one attribute row per vector (see
:mod:`embedlab.index.attributes`) and answers ``search(q, k, filter=...)`` with one of four
strategies, compared in "Benchmarking Filtered Approximate Nearest Neighbor Search" (2025),
whose finding is that none is best at every selectivity:

- ``"pre"``: evaluate the predicate, then an exact scan of the matching rows. Exact; its cost
  grows with the number of matching rows.
- ``"post"``: search the *unfiltered* base index with an over-fetch of ``~k / selectivity``
  candidates, keep the matching ones, and grow the fetch (x ``post_growth``) for the queries
  that found fewer than ``k`` until the whole index was fetched. Cheap for permissive filters.
- ``"acorn"``: the predicate-aware graph of :mod:`embedlab.index.acorn` (ACORN-gamma), which
  only visits matching nodes. Good in between.
- ``"hnsw"`` (when the base is an :class:`~embedlab.index.hnsw.HNSW` index, possibly under
  ``Rerank``): faiss' HNSW search with the predicate as an ``IDSelectorBitmap``, which
  traverses every node but returns only matching ones; its width is ``efSearch /
  selectivity`` (see :mod:`embedlab.index._filtered_hnsw`).
- ``"auto"``: a per-query planner. It estimates the selectivity from the attribute
  statistics (no scan); a permissive estimate (``>= post_min_selectivity``) goes to post
  without evaluating the predicate on every row. Otherwise the mask is evaluated (pre and
  acorn need it anyway), which gives the exact count for free, and the plan is: pre when at
  most ``pre_max_rows`` rows match (times the number of queries sharing the filter in the
  call, up to 8: they share one gather and one matmul) or the share is below
  ``acorn_min_selectivity`` (where the graph's recall drops), post when the exact share is
  permissive after all, else acorn -- or hnsw when the base is an HNSW index and the ACORN
  graph was not built (``build_graph()`` or ``strategy="acorn"`` build it): with an HNSW
  base, ``"auto"`` then needs no second graph.

  Defaults, from ``benchmarks/filtered_search.py`` on 100k x 384 (2 shared cores, k=10):
  pre-filtering one query costs about ``rows * dim`` flops plus the gather, ~1 ms per 10k
  rows, while a graph query costs 1-3 ms whatever the selectivity, so pre wins up to a few
  thousand rows for a lone query and up to ~15-20k rows for batches of queries sharing a
  filter (``pre_max_rows=2000``, x8); ACORN's recall holds (>= 0.98) down to 1-2%
  selectivity and falls below (0.17 at 0.1%), hence ``acorn_min_selectivity=0.02``;
  post-filtering matched ACORN from 30% on (within 10%) and needs no mask evaluation
  (``post_min_selectivity=0.3``).

  ACORN or HNSW in the middle band (``filtered_search.py --graphs``, 100k x 384, per-query
  filters, recall@10 / QPS at efSearch 16, ACORN vs HNSW32 + ``IDSelectorBitmap``): on one
  pinned core and the synthetic data, 10% 0.993 / 1,287 vs 0.985 / 689 and 1% 0.987 / 523
  vs 0.997 / 149; on 2 cores and the structured data, 10% 0.970 / 2,921 vs 0.984 / 2,123
  and 1% 0.919 / 491 vs 0.995 / 474 (unfiltered, HNSW is ahead: 0.974 / 6,803 vs 0.979 /
  12,614). Neither wins everywhere, and the ACORN graph costs ``m * gamma`` links per
  vector (1 KiB at the defaults, ~100 MiB for 100k vectors) and a longer build (31 s vs 6 s
  for HNSW32 there), so an HNSW base stands in for it unless it was built.

The plan taken for each query of the last call is in :attr:`FilteredIndex.last_plan`.

Storage: the index keeps the float32 vectors (``4 * dim`` bytes per vector; shared with the
base when the base is a ``Flat`` index) because pre-filtering and the graph need exact
distances; the base index (any :class:`VectorIndex`, e.g. ``Binary,Rerank(Flat)``) serves
post-filtering, whose candidates are then re-scored exactly. Without a base, post-filtering
and unfiltered search use the ACORN graph without a predicate (an HNSW-like index).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self, cast

import numpy as np

from embedlab._validation import check_choice, check_int, check_positive_float, check_vectors
from embedlab.index._base import F32, I64, Metric, VectorIndex, register_index
from embedlab.index._filtered_hnsw import find_hnsw
from embedlab.index._filtered_plan import (
    STRATEGIES,
    Plan,
    Strategy,
    compile_filters,
    plan_filter,
)
from embedlab.index._filtered_store import FilteredStore, graph_class
from embedlab.index.attributes import AttributeStore, Predicate, Selectivity

__all__ = ["STRATEGIES", "FilteredIndex", "Plan", "Strategy", "load_filtered"]


@register_index("Filtered")
class FilteredIndex(FilteredStore):
    """Vector index with attribute filters and a per-query choice of filtering strategy.

    Args:
        dim: vector dimension.
        metric: ``"cos"``, ``"ip"`` or ``"l2"`` (negative squared distance).
        base: the unfiltered index used by post-filtering (must be empty, same dim/metric);
            ``None`` uses the ACORN graph without a predicate.
        strategy: default strategy, ``"auto"``, ``"pre"``, ``"post"``, ``"acorn"`` or
            ``"hnsw"`` (needs an HNSW base, e.g. ``index_factory(dim, "HNSW32")``).
        columns: optional attribute schema ``{name: "categorical" | "numeric"}``.
        m, gamma, ef_search: ACORN graph parameters (filtered neighbourhood ``m``, lists of
            ``m * gamma``, search width).
        pre_max_rows: the planner pre-filters when at most this many rows match (times the
            number of queries in the call sharing the filter, up to 8).
        acorn_min_selectivity: ... and when the share of matching rows is below this.
        post_min_selectivity: the planner post-filters from this share of matching rows on.
        post_growth: factor by which post-filtering grows its fetch between rounds.
        seed: seeds the graph.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((1000, 16)).astype("float32")
        >>> index = FilteredIndex(16, metric="l2")
        >>> index.add(x, attrs={"lang": rng.choice(["en", "de"], 1000),
        ...                     "year": rng.integers(2000, 2025, 1000)})
        >>> scores, ids = index.search(x[:2], 5, filter={"lang": "en", "year": (2019, None)})
        >>> ids.shape, index.last_plan[0].strategy in ("pre", "post", "acorn")
        ((2, 5), True)
    """

    def __init__(
        self,
        dim: int,
        *,
        metric: Metric = "cos",
        base: VectorIndex | None = None,
        strategy: Strategy = "auto",
        columns: Mapping[str, str] | None = None,
        m: int = 32,
        gamma: int = 4,
        ef_search: int = 64,
        pre_max_rows: int = 2000,
        acorn_min_selectivity: float = 0.02,
        post_min_selectivity: float = 0.3,
        post_growth: int = 4,
        seed: int = 0,
    ) -> None:
        super().__init__(dim, metric=metric)
        if base is not None:
            if not isinstance(base, VectorIndex):
                raise TypeError(f"base must be a VectorIndex or None, got {type(base).__name__}")
            if base.dim != self.dim or base.metric != self.metric:
                raise ValueError(
                    f"base must have dim={self.dim} and metric={self.metric!r}, got "
                    f"dim={base.dim} and metric={base.metric!r}"
                )
            if base.ntotal:
                raise ValueError(f"base must be empty, got an index holding {base.ntotal}")
        self.base = base
        self.strategy = cast(Strategy, check_choice("strategy", strategy, STRATEGIES))
        self._check_hnsw(self.strategy)
        self.pre_max_rows = check_int("pre_max_rows", pre_max_rows, min_value=0)
        self.acorn_min_selectivity = self._share("acorn_min_selectivity", acorn_min_selectivity)
        self.post_min_selectivity = self._share("post_min_selectivity", post_min_selectivity)
        self.post_growth = check_int("post_growth", post_growth, min_value=2)
        self.seed = check_int("seed", seed, min_value=0)
        self.attributes = AttributeStore(columns)
        self._graph_params = {
            "m": m,
            "gamma": gamma,
            "ef_search": ef_search,
            "seed": self.seed,
        }
        # Validate the graph parameters now, not at the first add.
        graph_class()(self.dim, metric=self.metric, **self._graph_params)
        self.graph = None
        self._x = np.zeros((0, self.dim), np.float32)
        self._sq = np.zeros(0, np.float32)
        self._pending = None
        self.last_plan: tuple[Plan, ...] = ()

    def _check_hnsw(self, strategy: str) -> None:
        if strategy == "hnsw" and find_hnsw(self.base) is None:
            got = "None" if self.base is None else repr(self.base.spec())
            raise ValueError(
                "strategy 'hnsw' needs an HNSW base index (base=index_factory(dim, 'HNSW32'), "
                f"optionally with Int8 codes or a Rerank stage), got base {got}"
            )

    @staticmethod
    def _share(name: str, value: Any) -> float:
        v = check_positive_float(name, value, strict=False)
        if v > 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
        return v

    def spec(self) -> str:
        own = f"Filtered(strategy={self.strategy})"
        return own if self.base is None else f"{self.base.spec()},{own}"

    # ------------------------------------------------------------ public protocol
    def add(self, x: Any, ids: Any = None, attrs: Mapping[str, Any] | None = None) -> None:
        """Add vectors ``x (n, dim)`` with ``ids (n,)`` and ``attrs {column: (n,) values}``.

        Every column of the index must be given on every add; the first add with attributes
        fixes the columns (unless a schema was given).
        """
        arr = check_vectors("x", x, self.dim)
        encoded = self.attributes._encode(attrs, arr.shape[0])
        self._pending = encoded
        try:
            super().add(arr, ids)
        finally:
            self._pending = None
        if arr.shape[0] == 0:
            self.attributes._append(encoded, 0)

    def search(
        self,
        q: Any,
        k: int,
        filter: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
        *,
        strategy: Strategy | None = None,
        **params: Any,
    ) -> tuple[F32, I64]:
        """The ``k`` best vectors per query that pass ``filter``.

        Args:
            q: queries ``(n_q, dim)``.
            k: results per query.
            filter: one filter dict for every query, a list of ``n_q`` filters (``None``
                entries mean no filter), or ``None``.
            strategy: overrides the index's strategy for this call.
            params: ``efSearch=N`` (>= ``k``), the search width in matching results of the
                ``"acorn"`` and ``"hnsw"`` strategies and of unfiltered search through the
                ACORN graph or an HNSW base (default: ``ef_search`` / the HNSW's ``efSearch``).

        Returns:
            ``(scores (n_q, k) float32, ids (n_q, k) int64)``, best first; ``-1`` / ``-inf``
            where fewer than ``k`` vectors pass (a filter matching nothing gives all ``-1``).
        """
        k = check_int("k", k, min_value=1)
        self._check_search_params(params)
        ef = params.get("efSearch")
        ef = None if ef is None else check_int("efSearch", ef, min_value=1)
        strat = cast(
            Strategy,
            self.strategy if strategy is None else check_choice("strategy", strategy, STRATEGIES),
        )
        self._check_hnsw(strat)
        qn = self._prepare(q, "queries")
        k = self.result_width(k)
        n_q = qn.shape[0]
        preds = compile_filters(self.attributes, filter, n_q)
        out_s = np.full((n_q, k), -np.inf, np.float32)
        out_p = np.full((n_q, k), -1, np.int64)
        plans: list[Plan] = [Plan("none", 1.0, self.ntotal, True)] * n_q
        groups: dict[Any, tuple[Predicate | None, list[int]]] = {}
        for i, pred in enumerate(preds):
            key = None if pred is None or pred.matches_all else pred.key
            groups.setdefault(key, (None if key is None else pred, []))[1].append(i)
        kk = min(k, self.ntotal)
        if ef is not None and 0 < ef < kk:
            raise ValueError(
                f"efSearch (the search width) must be >= k (the results asked for), got "
                f"efSearch={ef} and k={kk}"
            )
        if kk and n_q:
            for pred, members in groups.values():
                idx = np.asarray(members, dtype=np.int64)
                s, p, plan = self._search_group(qn[idx], kk, pred, strat, ef)
                out_s[idx, : s.shape[1]] = s
                out_p[idx, : p.shape[1]] = p
                for i in members:
                    plans[i] = plan
        self.last_plan = tuple(plans)
        if not self.ntotal:
            return out_s, out_p
        ids = np.where(out_p >= 0, self._idmap.take(np.maximum(out_p, 0)), -1)
        out_s[ids < 0] = -np.inf
        return out_s, ids.astype(np.int64)

    def estimate(self, filter: Mapping[str, Any]) -> Selectivity:
        """Selectivity of ``filter`` from the attribute statistics (no scan)."""
        return self.attributes.estimate(filter)

    def plan(self, filter: Mapping[str, Any] | None, n_queries: int = 1) -> Plan:
        """The plan ``"auto"`` would take for ``filter`` shared by ``n_queries`` queries."""
        pred = None if filter is None else self.attributes.compile(filter)
        if pred is None or pred.matches_all or not self.ntotal:
            return Plan("none", 1.0, self.ntotal, True)
        return self._plan(pred, n_queries)[0]

    # ------------------------------------------------------------ planning
    def _plan(self, pred: Predicate, n_queries: int = 1) -> tuple[Plan, np.ndarray | None]:
        return plan_filter(
            self.attributes, pred, self.ntotal, n_queries, pre_max_rows=self.pre_max_rows,
            acorn_min_selectivity=self.acorn_min_selectivity,
            post_min_selectivity=self.post_min_selectivity, graph_strategy=self._graph_strategy,
        )  # fmt: skip

    def _graph_strategy(self) -> str:
        """The planner's in-graph strategy: ACORN when its graph exists or no HNSW base can
        stand in for it, else ``"hnsw"`` (no second graph to build; see the module)."""
        return "acorn" if self.graph is not None or find_hnsw(self.base) is None else "hnsw"

    def search_params(self) -> frozenset[str]:
        """``efSearch``: the search width (in matching results) of the graph strategies."""
        return frozenset({"efSearch"})

    def _search_group(
        self, q: F32, k: int, pred: Predicate | None, strategy: Strategy, ef: int | None = None
    ) -> tuple[F32, I64, Plan]:
        if pred is None:
            s, p = self._unfiltered(q, k, ef)
            return s, p, Plan("none", 1.0, self.ntotal, True)
        mask: np.ndarray | None = None
        if strategy == "auto":
            plan, mask = self._plan(pred, q.shape[0])
        else:
            est = self.attributes.estimate(pred)
            plan = Plan(strategy, est.fraction, est.rows, est.exact)
        if plan.strategy == "post":
            s, p, fetched = self._post(q, k, pred, plan.selectivity, mask)
            return s, p, Plan("post", plan.selectivity, plan.rows, plan.exact, fetched)
        if mask is None:
            mask = self.attributes.mask(pred)
        if plan.strategy == "pre":
            s, p = self._pre(q, k, mask)
        elif plan.strategy == "hnsw":
            s, p = self._hnsw(q, k, mask, ef)
        else:
            s, p = self._acorn(q, k, mask, ef)
        return s, p, plan

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, attr_meta = self.attributes.state()
        if not self._shares_vectors:
            arrays["vectors"] = self._x
        graph_meta: dict[str, Any] | None = None
        if self.graph is not None:
            graph_meta = self.graph.params()
            for name, arr in self.graph.state().items():
                arrays[f"graph_{name}"] = arr
        meta = {
            "strategy": self.strategy,
            "has_base": self.base is not None,
            "pre_max_rows": self.pre_max_rows,
            "acorn_min_selectivity": self.acorn_min_selectivity,
            "post_min_selectivity": self.post_min_selectivity,
            "post_growth": self.post_growth,
            "graph_params": self._graph_params,
            "graph": graph_meta,
            "attributes": attr_meta,
        }
        return arrays, meta

    @classmethod
    def _from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], folder: Path) -> Self:
        from embedlab.index.io import load_child

        gp = dict(meta["graph_params"])
        obj = cls(
            meta["dim"],
            metric=meta["metric"],
            strategy="auto",  # set below, once the base (which "hnsw" needs) is loaded
            m=gp["m"],
            gamma=gp["gamma"],
            ef_search=gp["ef_search"],
            seed=gp["seed"],
            pre_max_rows=meta["pre_max_rows"],
            acorn_min_selectivity=meta["acorn_min_selectivity"],
            post_min_selectivity=meta["post_min_selectivity"],
            post_growth=meta["post_growth"],
        )
        if meta["has_base"]:
            obj.base = load_child(folder, "base")
        obj.strategy = cast(Strategy, check_choice("strategy", meta["strategy"], STRATEGIES))
        obj._check_hnsw(obj.strategy)
        obj.attributes = AttributeStore.from_state(arrays, meta["attributes"])
        n = len(obj.attributes)
        if not obj._shares_vectors:
            vec = np.ascontiguousarray(arrays["vectors"], dtype=np.float32)
            obj._x = vec
        if obj.vectors.shape != (n, obj.dim):
            raise ValueError(
                f"{folder}: the vectors hold {obj.vectors.shape}, the attributes {n} rows"
            )
        if obj.metric == "l2":
            obj._sq = np.einsum("ij,ij->i", obj.vectors, obj.vectors).astype(np.float32)
        if meta["graph"] is not None:
            graph_arrays = {"nbrs": arrays["graph_nbrs"], "nbr_scores": arrays["graph_nbr_scores"]}
            obj.graph = graph_class().from_state(obj.dim, obj.metric, meta["graph"], graph_arrays)
            if obj.graph.n != n:
                raise ValueError(f"{folder}: the graph has {obj.graph.n} nodes, expected {n}")
        return obj

    @classmethod
    def load(cls, path: str | Path) -> FilteredIndex:
        """Load an index saved with :meth:`save` (checksums verified, no pickle)."""
        return load_filtered(path)


def load_filtered(path: str | Path) -> FilteredIndex:
    """Load a :class:`FilteredIndex` saved with ``save`` (same as :func:`load_index`)."""
    from embedlab.index.io import load_index

    index = load_index(path)
    if not isinstance(index, FilteredIndex):
        raise ValueError(
            f"{path} holds a {type(index).__name__} index, not a FilteredIndex; "
            "use embedlab.index.load_index"
        )
    return index
