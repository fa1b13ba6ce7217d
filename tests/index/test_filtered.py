"""Filtered search: attribute predicates, selectivity, pre/post/ACORN strategies, planner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedlab.index.acorn import AcornGraph
from embedlab.index.attributes import AttributeStore
from embedlab.index.factory import index_factory
from embedlab.index.filtered import FilteredIndex, load_filtered
from embedlab.index.flat import Flat
from embedlab.index.hnsw import HNSW
from embedlab.index.int8 import Int8
from embedlab.index.io import data_folder

DIM = 32
LANGS = np.array(["en", "de", "fr", "es", "it"])


def latent_data(seed: int, n: int = 3000, n_q: int = 60, dim: int = DIM) -> tuple[np.ndarray, ...]:
    """Vectors on a low-dimensional mixture (like text embeddings), lightly noised."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((20, 8))
    w = rng.standard_normal((8, dim)) / np.sqrt(8)

    def draw(m: int) -> np.ndarray:
        z = means[rng.integers(0, 20, m)] + 0.6 * rng.standard_normal((m, 8))
        return (z @ w + 0.1 * rng.standard_normal((m, dim))).astype(np.float32)

    return draw(n), draw(n_q)


def make_attrs(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 100)
    return {
        "lang": LANGS[rng.integers(0, 5, n)],
        "year": rng.integers(2000, 2025, n),
        "price": rng.uniform(0.0, 100.0, n),
        "stock": rng.random(n) < 0.3,
        "tag": rng.integers(0, 1000, n),  # tag == t keeps 0.1% of rows
    }


def brute_force(x: np.ndarray, q: np.ndarray, mask: np.ndarray, k: int, metric: str) -> tuple:
    if metric == "cos":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    s = q @ x.T if metric != "l2" else -((q[:, None, :] - x[None]) ** 2).sum(-1)
    s = np.where(mask[None, :], s, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    ids = np.where(np.isfinite(np.take_along_axis(s, order, axis=1)), order, -1)
    return np.take_along_axis(s, order, axis=1), ids


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [
        len(set(f[f >= 0]) & set(t[t >= 0])) / max(1, (t >= 0).sum())
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits))


def naive_match(row: dict[str, Any], flt: dict[str, Any]) -> bool:
    for col, cond in flt.items():
        v = row[col]
        if isinstance(cond, tuple):
            lo, hi = cond
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                return False
        elif isinstance(cond, (set, frozenset, list)):
            if v not in cond:
                return False
        elif v != cond:
            return False
    return True


@pytest.fixture(scope="module")
def built() -> tuple[FilteredIndex, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    x, q = latent_data(0)
    attrs = make_attrs(x.shape[0], 0)
    index = FilteredIndex(DIM, metric="cos")
    index.add(x, attrs=attrs)
    return index, x, q, attrs


# --------------------------------------------------------------------------- predicates
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mask_matches_naive_python_evaluation(seed: int) -> None:
    n = 500
    attrs = make_attrs(n, seed)
    store = AttributeStore()
    store.add(attrs, n)
    rows = [{c: attrs[c][i].item() for c in attrs} for i in range(n)]
    filters: list[dict[str, Any]] = [
        {"lang": "en"},
        {"lang": {"en", "de"}},
        {"lang": ["fr"], "stock": True},
        {"year": (2010, 2015)},
        {"year": (None, 2003)},
        {"price": (50.0, None)},
        {"year": 2020},
        {"year": {2001, 2002}},
        {"lang": "de", "year": (2005, 2020), "price": (10.5, 80.0)},
        {"lang": "xx"},  # absent value: matches nothing
        {"tag": (990, None), "stock": False},
        {},
    ]
    for flt in filters:
        want = np.array([naive_match(r, flt) for r in rows])
        np.testing.assert_array_equal(store.mask(flt), want, err_msg=str(flt))
        assert store.count(flt) == int(want.sum())
        pos = np.array([3, -1, 7, 499, 0])
        expect = np.where(pos >= 0, want[np.maximum(pos, 0)], False)
        np.testing.assert_array_equal(store.mask_rows(flt, pos), expect)


def test_values_round_trip_and_columns() -> None:
    store = AttributeStore({"shop": "categorical", "year": "numeric"})
    store.add({"shop": [3, 5, 3], "year": [2001, 2002, 2003]}, 3)
    store.add({"shop": np.array([7]), "year": np.array([1999.5])}, 1)
    assert store.columns == {"shop": "categorical", "year": "numeric"}
    assert store.values("shop").tolist() == [3, 5, 3, 7]
    assert store.mask({"shop": 3}).tolist() == [True, False, True, False]
    store.remove(np.array([0]))
    assert store.values("shop").tolist() == [5, 3, 7]
    assert store.estimate({"shop": 3}).rows == 1  # counts follow removals


def test_selectivity_estimate_against_exact_counts() -> None:
    n = 20000
    attrs = make_attrs(n, 3)
    store = AttributeStore()
    store.add(attrs, n)
    # Categorical clauses are exact counts.
    for flt in ({"lang": "en"}, {"lang": {"de", "fr"}}, {"stock": True}, {"lang": "xx"}):
        est = store.estimate(flt)
        assert est.exact and est.rows == store.count(flt)
    # Numeric ranges from the quantile sketch: within 1% of n.
    errors = []
    for flt in (
        {"price": (10.0, 30.0)},
        {"price": (None, 5.0)},
        {"price": (99.0, None)},
        {"year": (2010, 2014)},
        {"year": 2020},
        {"year": {2001, 2002, 2003}},
        {"tag": (100, 199)},
    ):
        est = store.estimate(flt)
        assert not est.exact
        errors.append(abs(est.fraction - store.count(flt) / n))
    assert max(errors) < 0.005  # measured 0.0023 (year == 2020)
    # AND: independence assumption (the columns are independent here).
    flt = {"lang": "en", "price": (0.0, 50.0), "stock": False}
    est = store.estimate(flt)
    assert abs(est.fraction - store.count(flt) / n) < 0.005  # measured 0.0003
    assert AttributeStore().estimate({}).rows == 0


# --------------------------------------------------------------------------- strategies
@pytest.mark.parametrize("metric", ["cos", "ip", "l2"])
@pytest.mark.parametrize("use_flat_base", [False, True])
def test_pre_filter_equals_brute_force_on_the_subset(metric: str, use_flat_base: bool) -> None:
    x, q = latent_data(1, n=1500, n_q=20)
    attrs = make_attrs(x.shape[0], 1)
    base = Flat(DIM, metric=metric) if use_flat_base else None  # type: ignore[arg-type]
    index = FilteredIndex(DIM, metric=metric, base=base, strategy="pre")  # type: ignore[arg-type]
    index.add(x, attrs=attrs)
    for flt in ({"lang": "en", "year": (2005, 2015)}, {"stock": False}, {"year": 2011}):
        mask = index.attributes.mask(flt)
        want_s, want_i = brute_force(x, q, mask, 10, metric)
        scores, ids = index.search(q, 10, filter=flt)
        np.testing.assert_array_equal(ids, want_i)
        np.testing.assert_allclose(scores, want_s, rtol=1e-4, atol=1e-3)
        assert {p.strategy for p in index.last_plan} == {"pre"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_post_and_acorn_return_only_matches_with_high_recall(seed: int) -> None:
    x, q = latent_data(seed)
    attrs = make_attrs(x.shape[0], seed)
    index = FilteredIndex(DIM, metric="cos")
    index.add(x, attrs=attrs, ids=np.arange(x.shape[0]) + 1000)
    floors = {  # recall@10 against exact filtered search
        ("post", "lang"): 0.95,  # measured 0.997, 1.000, 0.997 (seeds 0, 1, 2)
        ("acorn", "lang"): 0.95,  # measured 1.000, 1.000, 1.000
        ("post", "stock"): 0.95,  # measured 1.000, 0.992, 0.993
        ("acorn", "stock"): 0.95,  # measured 1.000, 1.000, 0.998
    }
    for (strategy, kind), floor in floors.items():
        flt = {"lang": "en", "year": (2000, 2019)} if kind == "lang" else {"stock": True}
        mask = index.attributes.mask(flt)
        _, truth = brute_force(x, q, mask, 10, "cos")
        _, ids = index.search(q, 10, filter=flt, strategy=strategy)  # type: ignore[arg-type]
        assert (ids >= 1000).all()
        assert mask[ids - 1000].all(), f"{strategy} returned a non-matching id"
        assert recall(ids - 1000, truth) >= floor, (strategy, kind, recall(ids - 1000, truth))


def test_post_with_a_compressed_base_rescores_exactly() -> None:
    x, q = latent_data(4, n=2000, n_q=20)
    attrs = make_attrs(x.shape[0], 4)
    index = FilteredIndex(DIM, metric="ip", base=Int8(DIM, metric="ip"), strategy="post")
    index.train(x)
    index.add(x, attrs=attrs)
    flt = {"lang": {"en", "de"}}
    mask = index.attributes.mask(flt)
    _want_s, want_i = brute_force(x, q, mask, 10, "ip")
    scores, ids = index.search(q, 10, filter=flt)
    assert mask[ids].all()
    assert recall(ids, want_i) >= 0.95  # measured 1.000
    exact = np.einsum("qd,qkd->qk", q, x[ids])
    np.testing.assert_allclose(scores, exact, rtol=1e-4, atol=1e-4)


def test_per_query_filters_and_plans(built: tuple) -> None:
    index, _x, q, attrs = built
    filters = [{"lang": LANGS[i % 5]} if i % 3 else None for i in range(q.shape[0])]
    _scores, ids = index.search(q, 5, filter=filters)
    for i, flt in enumerate(filters):
        if flt is not None:
            assert (attrs["lang"][ids[i]] == flt["lang"]).all()
            assert index.last_plan[i].strategy in ("pre", "post", "acorn")
        else:
            assert index.last_plan[i].strategy == "none"
    # Unfiltered queries of the batch equal an unfiltered search.
    plain = [i for i, f in enumerate(filters) if f is None]
    _, unf = index.search(q[plain], 5)
    np.testing.assert_array_equal(ids[plain], unf)


def test_planner_picks_pre_for_selective_and_post_for_permissive_filters() -> None:
    rng = np.random.default_rng(5)
    n = 10000
    x = rng.standard_normal((n, 16)).astype(np.float32)
    attrs = {
        "half": rng.integers(0, 2, n).astype(bool),
        "tenth": rng.integers(0, 10, n),
        "rare": rng.integers(0, 1000, n),
    }
    base = Flat(16, metric="l2")
    index = FilteredIndex(16, metric="l2", base=base, strategy="pre", pre_max_rows=500)
    index.add(x, attrs=attrs)
    assert index.plan({"rare": 7}).strategy == "pre"  # 0.1%
    assert index.plan({"half": True}).strategy == "post"  # 50%
    assert index.plan({"tenth": (3, 3)}).strategy == "acorn"  # 10%
    assert index.plan(None).strategy == "none"
    _, ids = index.search(x[:4], 10, filter={"rare": 7}, strategy="auto")
    assert [p.strategy for p in index.last_plan] == ["pre"] * 4
    assert (attrs["rare"][ids[ids >= 0]] == 7).all()


def test_filters_matching_nothing_give_minus_one(built: tuple) -> None:
    index, _, q, _ = built
    for strategy in ("pre", "post", "acorn", "auto"):
        for flt in ({"lang": "xx"}, {"year": (1800, 1900)}, {"lang": "en", "year": 1999}):
            scores, ids = index.search(q[:3], 7, filter=flt, strategy=strategy)
            assert (ids == -1).all() and np.isneginf(scores).all(), (strategy, flt)


def test_padding_when_fewer_rows_match_than_k(built: tuple) -> None:
    index, _, q, attrs = built
    tag = int(attrs["tag"][0])
    n_match = int((attrs["tag"] == tag).sum())
    for strategy in ("pre", "post", "acorn"):
        scores, ids = index.search(q[:2], n_match + 5, filter={"tag": tag}, strategy=strategy)
        if strategy == "pre":
            assert (ids[:, :n_match] >= 0).all()
        assert (ids[:, n_match:] == -1).all() and np.isneginf(scores[:, n_match:]).all()
        assert (attrs["tag"][ids[ids >= 0]] == tag).all()


def test_empty_index_and_k_above_ntotal() -> None:
    index = FilteredIndex(4, columns={"lang": "categorical"})
    scores, ids = index.search(np.ones((2, 4)), 3, filter={"lang": "en"})
    assert (ids == -1).all() and np.isneginf(scores).all()
    index.add(np.eye(4, dtype=np.float32), attrs={"lang": ["en", "de", "en", "de"]})
    _scores, ids = index.search(np.eye(4)[:1], 10, filter={"lang": "en"})
    assert sorted(ids[0, :2].tolist()) == [0, 2] and (ids[0, 2:] == -1).all()


def test_remove_compacts_attributes_and_graph(built: tuple) -> None:
    _, x, q, attrs = built
    index = FilteredIndex(DIM)
    index.add(x, attrs=attrs)
    removed = np.arange(0, x.shape[0], 3)
    assert index.remove(removed) == removed.size
    keep = np.setdiff1d(np.arange(x.shape[0]), removed)
    flt = {"lang": {"en", "fr"}}
    np.testing.assert_array_equal(
        index.attributes.mask(flt), np.isin(attrs["lang"][keep], ["en", "fr"])
    )
    _, truth = brute_force(x[keep], q, index.attributes.mask(flt), 10, "cos")
    for strategy in ("pre", "post", "acorn"):
        _, ids = index.search(q, 10, filter=flt, strategy=strategy)
        assert not np.isin(ids, removed).any()
        assert np.isin(attrs["lang"][ids], ["en", "fr"]).all()
        assert recall(np.searchsorted(keep, ids), truth) >= 0.95  # measured 1.0, 0.998, 1.0


@pytest.mark.parametrize("use_base", [False, True])
def test_save_load_round_trip(built: tuple, tmp_path: Path, use_base: bool) -> None:
    _, x, q, attrs = built
    base = Flat(DIM) if use_base else None
    index = FilteredIndex(DIM, base=base, strategy="acorn", gamma=4)
    index.add(x[:1000], attrs={c: v[:1000] for c, v in attrs.items()})
    flt = {"lang": "de", "price": (20.0, None)}
    s1, i1 = index.search(q, 10, filter=flt)
    index.save(tmp_path / "ix")
    loaded = load_filtered(tmp_path / "ix")
    assert loaded.spec() == index.spec() and loaded.ntotal == 1000
    assert loaded.attributes.columns == index.attributes.columns
    assert loaded.memory_bytes() == index.memory_bytes()
    s2, i2 = loaded.search(q, 10, filter=flt)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(loaded.attributes.values("lang"), attrs["lang"][:1000])
    loaded.add(x[1000:1010], attrs={c: v[1000:1010] for c, v in attrs.items()})
    assert loaded.ntotal == 1010
    _, ids = loaded.search(q[:3], 5, filter={"lang": "de"})
    assert (attrs["lang"][ids] == "de").all()


def test_load_rejects_altered_files(built: tuple, tmp_path: Path) -> None:
    _, x, _, attrs = built
    index = FilteredIndex(DIM, strategy="pre")
    index.add(x[:50], attrs={c: v[:50] for c, v in attrs.items()})
    index.save(tmp_path / "ix")
    path = data_folder(tmp_path / "ix") / "attr0.npy"
    path.write_bytes(path.read_bytes()[:-4] + b"\x00\x00\x00\x01")
    with pytest.raises(ValueError, match="corrupted or was altered"):
        load_filtered(tmp_path / "ix")
    Flat(DIM).save(tmp_path / "flat")
    with pytest.raises(ValueError, match="holds a Flat index, not a FilteredIndex"):
        load_filtered(tmp_path / "flat")


# --------------------------------------------------------------------------- bad input
def test_bad_filters_raise_clear_errors(built: tuple) -> None:
    index, _, q, _ = built
    cases: list[tuple[Any, type[Exception], str]] = [
        ({"colour": "red"}, ValueError, "filter column 'colour' is unknown; columns: lang"),
        ({"lang": 3}, TypeError, r"filter\['lang'\] values must be str .* got 3 \(int\)"),
        ({"year": "2020"}, TypeError, r"filter\['year'\] values must be numbers"),
        ({"stock": 1}, TypeError, r"values must be bool for column 'stock'"),
        ({"lang": set()}, ValueError, r"filter\['lang'\] is an empty set"),
        ({"year": (2020, 2010)}, ValueError, r"range has low > high: \(2020, 2010\)"),
        ({"year": (1, 2, 3)}, ValueError, r"range must be a \(low, high\) tuple"),
        ({"lang": ("a", "b")}, ValueError, "is a range but column 'lang' is categorical"),
        ({"year": float("nan")}, ValueError, "must not be NaN"),
        ({"lang": {"a": 1}}, TypeError, "must be a value, a set/list of values"),
        ("lang=en", TypeError, "filter must be a dict"),
        ([{"lang": "en"}], ValueError, r"list of one filter per query \(60\), got a list of 1"),
    ]
    for flt, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            index.search(q, 5, filter=flt)
    with pytest.raises(ValueError, match="strategy must be one of acorn, auto, hnsw, post, pre"):
        index.search(q, 5, filter={"lang": "en"}, strategy="exact")  # type: ignore[arg-type]


def test_bad_attrs_raise_clear_errors() -> None:
    x = np.ones((3, 4), np.float32)
    index = FilteredIndex(4, strategy="pre")
    with pytest.raises(ValueError, match=r"attrs\['lang'\] has 2 values, expected 3"):
        index.add(x, attrs={"lang": ["en", "de"]})
    with pytest.raises(TypeError, match=r"attrs\['lang'\] must hold values of one type"):
        index.add(x, attrs={"lang": ["en", 3, "de"]})
    with pytest.raises(ValueError, match=r"attrs\['year'\] must be finite"):
        index.add(x, attrs={"year": [1.0, float("nan"), 2.0]})
    assert index.ntotal == 0  # nothing was added by the failed calls
    index.add(x, attrs={"lang": ["en", "de", "en"], "year": [1, 2, 3]})
    with pytest.raises(ValueError, match="attrs is missing column 'year'"):
        index.add(x, attrs={"lang": ["en", "de", "en"]})
    with pytest.raises(ValueError, match="attrs has column 'size' which the index does not"):
        index.add(x, attrs={"lang": ["a"] * 3, "year": [1, 2, 3], "size": [1, 2, 3]})
    with pytest.raises(ValueError, match="attrs are required: the index has attribute columns"):
        index.add(x)
    with pytest.raises(TypeError, match=r"attrs\['lang'\] must hold str values"):
        index.add(x, attrs={"lang": [1, 2, 3], "year": [1, 2, 3]})
    with pytest.raises(TypeError, match=r"attrs\['year'\] must hold numbers"):
        index.add(x, attrs={"lang": ["a"] * 3, "year": ["x", "y", "z"]})
    with pytest.raises(ValueError, match="ids must be unique"):
        index.add(x, ids=[0, 1, 2], attrs={"lang": ["a"] * 3, "year": [1, 2, 3]})
    assert index.ntotal == 3 and len(index.attributes) == 3
    with pytest.raises(ValueError, match="kind of column 'a' must be one of categorical"):
        AttributeStore({"a": "text"})


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="base must have dim=8 and metric='cos'"):
        FilteredIndex(8, base=Flat(4))
    with pytest.raises(ValueError, match="strategy must be one of acorn, auto, hnsw, post, pre"):
        FilteredIndex(8, strategy="best")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"post_min_selectivity must be in \[0, 1\], got 2"):
        FilteredIndex(8, post_min_selectivity=2)
    with pytest.raises(ValueError, match="gamma must be >= 1, got 0"):
        FilteredIndex(8, gamma=0)
    with pytest.raises(ValueError, match=r"m \* gamma .* must be <= 4096, got 32 \* 1000000"):
        FilteredIndex(8, gamma=10**6)


# --------------------------------------------------------------------------- the graph
def test_graph_is_deterministic_and_respects_the_mask() -> None:
    x, q = latent_data(6, n=5000, n_q=30)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    g1 = AcornGraph(DIM, m=8, gamma=4, exact_block=1000, seed=3)
    g2 = AcornGraph(DIM, m=8, gamma=4, exact_block=1000, seed=3)
    g1.extend(x[:4000])
    g1.extend(x)  # bulk build, then incremental batches
    g2.extend(x[:4000])
    g2.extend(x)
    np.testing.assert_array_equal(g1.nbrs, g2.nbrs)
    mask = np.random.default_rng(0).random(5000) < 0.2
    _s, nodes = g1.search(x, q, 10, mask=mask)
    assert mask[nodes].all()
    _, truth = brute_force(x, q, mask, 10, "ip")
    assert recall(nodes, truth) >= 0.95  # measured 0.997
    _, plain = g1.search(x, q, 10)
    _, truth = brute_force(x, q, np.ones(5000, bool), 10, "ip")
    assert recall(plain, truth) >= 0.95  # measured 1.000
    with pytest.raises(ValueError, match=r"mask must be a boolean array of shape \(5000,\)"):
        g1.search(x, q, 10, mask=np.ones(10, bool))


# --------------------------------------------------------------------------- HNSW strategy
@pytest.fixture(scope="module")
def hnsw_built() -> tuple[FilteredIndex, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    x, q = latent_data(7)
    attrs = make_attrs(x.shape[0], 7)
    index = FilteredIndex(DIM, base=index_factory(DIM, "HNSW16"), strategy="hnsw")
    index.add(x, attrs=attrs, ids=np.arange(x.shape[0]) + 500)
    return index, x, q, attrs


@pytest.mark.parametrize(
    ("flt", "floor"),
    [  # recall@10 against exact filtered search; measured at the default efSearch
        ({"stock": True}, 0.95),  # 29%: measured 0.993
        ({"lang": "en", "year": (2000, 2019)}, 0.95),  # 16%: measured 0.998
        ({"lang": "de", "year": (2010, 2011)}, 0.95),  # 1.9%: measured 1.000
        ({"tag": 3}, 0.99),  # 0.17%: retries reach every matching row, measured 1.000
    ],
)
def test_hnsw_strategy_returns_only_matches(hnsw_built: tuple, flt: dict, floor: float) -> None:
    index, x, q, _ = hnsw_built
    mask = index.attributes.mask(flt)
    _, truth = brute_force(x, q, mask, 10, "cos")
    _, ids = index.search(q, 10, filter=flt)
    assert {p.strategy for p in index.last_plan} == {"hnsw"}
    found = np.where(ids >= 0, ids - 500, -1)
    assert mask[found[found >= 0]].all()
    assert recall(found, truth) >= floor
    # as many results as rows match (up to k)
    assert ((found >= 0).sum(axis=1) == min(10, int(mask.sum()))).all()


@pytest.mark.parametrize("spec", ["HNSW32,Int8", "HNSW32,Rerank(Flat,k_factor=4)"])
def test_hnsw_strategy_under_int8_and_rerank_rescores_exactly(spec: str) -> None:
    x, q = latent_data(8, n=2000, n_q=20)
    attrs = make_attrs(x.shape[0], 8)
    base = index_factory(DIM, spec, metric="ip")
    index = FilteredIndex(DIM, metric="ip", base=base, strategy="hnsw")
    index.train(x)
    index.add(x, attrs=attrs)
    flt = {"lang": {"en", "de"}}
    mask = index.attributes.mask(flt)
    _, want = brute_force(x, q, mask, 10, "ip")
    scores, ids = index.search(q, 10, filter=flt, efSearch=64)
    assert mask[ids].all()
    # measured 1.000 (both specs; HNSW8 under "ip" plateaus at 0.86, the graph's limit)
    assert recall(ids, want) >= 0.95
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", q, x[ids]), rtol=1e-4, atol=1e-4)
    # unfiltered search with efSearch goes through the base (with its Rerank stage)
    _, plain = index.search(q, 10, efSearch=16)
    _, exact = brute_force(x, q, np.ones(x.shape[0], bool), 10, "ip")
    assert recall(plain, exact) >= 0.9


def test_ef_search_per_call_for_graph_strategies(hnsw_built: tuple) -> None:
    index, x, q, _ = hnsw_built
    flt = {"lang": "fr"}
    _, truth = brute_force(x, q, index.attributes.mask(flt), 10, "cos")
    for strategy in ("hnsw", "acorn"):
        _, narrow = index.search(q, 10, filter=flt, strategy=strategy, efSearch=10)
        _, wide = index.search(q, 10, filter=flt, strategy=strategy, efSearch=200)
        assert recall(wide - 500, truth) >= recall(narrow - 500, truth)
        assert recall(wide - 500, truth) >= 0.99
    with pytest.raises(ValueError, match=r"efSearch must be >= 1, got 0"):
        index.search(q, 10, filter=flt, efSearch=0)
    with pytest.raises(ValueError, match=r"efSearch .* must be >= k .*efSearch=5 and k=10"):
        index.search(q, 10, filter=flt, strategy="acorn", efSearch=5)
    with pytest.raises(ValueError, match=r"search parameter 'nprobe' is not taken by .*efSearch"):
        index.search(q, 10, filter=flt, nprobe=3)


def test_hnsw_strategy_needs_an_hnsw_base(built: tuple) -> None:
    index, _, q, _ = built
    msg = r"strategy 'hnsw' needs an HNSW base index .* got base None"
    with pytest.raises(ValueError, match=msg):
        index.search(q, 5, filter={"lang": "en"}, strategy="hnsw")
    with pytest.raises(ValueError, match=msg):
        FilteredIndex(DIM, strategy="hnsw")
    with pytest.raises(ValueError, match=r"needs an HNSW base index .* got base 'Int8'"):
        FilteredIndex(DIM, base=Int8(DIM), strategy="hnsw")


def test_hnsw_strategy_after_remove_and_reload(hnsw_built: tuple, tmp_path: Path) -> None:
    _, x, q, attrs = hnsw_built
    index = FilteredIndex(DIM, base=HNSW(DIM, M=8), strategy="hnsw")
    index.add(x[:1500], attrs={c: v[:1500] for c, v in attrs.items()})
    removed = np.arange(0, 1500, 25)  # few enough to stay tombstones in the HNSW
    index.remove(removed)
    flt = {"lang": "it"}
    s1, i1 = index.search(q, 10, filter=flt)
    assert not np.isin(i1, removed).any() and (attrs["lang"][i1] == "it").all()
    index.save(tmp_path / "ix")
    loaded = load_filtered(tmp_path / "ix")
    s2, i2 = loaded.search(q, 10, filter=flt)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(s1, s2)


def test_planner_uses_the_hnsw_base_instead_of_building_acorn() -> None:
    rng = np.random.default_rng(6)
    n = 6000
    x = rng.standard_normal((n, 16)).astype(np.float32)
    attrs = {
        "tenth": rng.integers(0, 10, n),
        "half": rng.integers(0, 2, n),
        "rare": rng.integers(0, 1000, n),
    }
    index = FilteredIndex(
        16, metric="l2", base=index_factory(16, "HNSW16", metric="l2"), pre_max_rows=50
    )
    index.add(x, attrs=attrs)
    assert index.graph is None  # "auto" with an HNSW base builds no ACORN graph
    assert index.plan({"tenth": 3}).strategy == "hnsw"  # 10%
    assert index.plan({"half": 1}).strategy == "post"  # 50%
    assert index.plan({"rare": 5}).strategy == "pre"  # 0.1%
    _, ids = index.search(x[:5], 10, filter={"tenth": 3})
    assert [p.strategy for p in index.last_plan] == ["hnsw"] * 5
    assert (attrs["tenth"][ids] == 3).all()
    before = index.memory_bytes()
    index.build_graph()  # once built, the planner uses the ACORN graph
    assert index.plan({"tenth": 3}).strategy == "acorn"
    # what "auto" saved: m * gamma links (int32 + float32 score) per vector
    assert index.memory_bytes() - before == n * 32 * 4 * 8


def structured(n: int, dim: int, seed: int, n_centres: int = 200) -> np.ndarray:
    """Clustered, anisotropic unit vectors with a shared mean direction (as in
    benchmarks/index_vs_faiss.py, where the ACORN graph used to trail HNSW)."""
    rng = np.random.default_rng(seed)
    spec = 1.0 / np.arange(1, dim + 1) ** 0.7
    rot, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    centres = rng.standard_normal((n_centres, dim)) * spec
    x = centres[rng.integers(0, n_centres, n)] + 0.6 * rng.standard_normal((n, dim)) * spec
    x = x @ rot.T
    mean = rng.standard_normal(dim)
    x += 0.5 * np.linalg.norm(x, axis=1).mean() * mean / np.linalg.norm(mean)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1])
def test_acorn_with_an_all_pass_filter_matches_hnsw(seed: int) -> None:
    import faiss

    d = structured(10200, 128, seed)
    q, x = d[:200], d[200:]
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
    g = AcornGraph(128, m=16, gamma=4, exact_block=1024, seed=seed)
    g.extend(x)
    _, nodes = g.search(x, q, 10, ef=64, mask=np.ones(x.shape[0], bool))
    ref = faiss.IndexHNSWFlat(128, 16, faiss.METRIC_INNER_PRODUCT)
    ref.add(x)
    ref.hnsw.efSearch = 64
    # measured 0.998, 0.993 (faiss HNSW16: 0.995, 0.993; the previous graph: 0.912, 0.934)
    assert recall(nodes, truth) >= 0.97
    assert recall(nodes, truth) >= recall(ref.search(q, 10)[1], truth) - 0.01
