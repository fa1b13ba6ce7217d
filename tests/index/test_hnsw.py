"""HNSW{M} (faiss' IndexHNSWFlat / IndexHNSWSQ behind embedlab's protocol)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlab.index import index_factory, load_index
from embedlab.index.binary import Binary
from embedlab.index.flat import Flat
from embedlab.index.hnsw import COMPACT_SHARE, HNSW
from embedlab.index.int8 import Int8
from embedlab.index.io import data_folder

DIM = 32


def clustered(seed: int, n: int = 4000, n_q: int = 100, dim: int = DIM) -> tuple[np.ndarray, ...]:
    """Gaussian clusters (50 centres, noise 0.8 of their spread), seeded."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim))
    x = centres[rng.integers(0, 50, n)] + 0.8 * rng.standard_normal((n, dim))
    q = centres[rng.integers(0, 50, n_q)] + 0.8 * rng.standard_normal((n_q, dim))
    return x.astype(np.float32), q.astype(np.float32)


def exact(x: np.ndarray, q: np.ndarray, k: int, metric: str) -> np.ndarray:
    index = Flat(x.shape[1], metric=metric)  # type: ignore[arg-type]
    index.add(x)
    return index.search(q, k)[1]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def build(spec: str, x: np.ndarray, metric: str = "cos") -> HNSW:
    index = index_factory(DIM, spec, metric=metric)  # type: ignore[arg-type]
    index.train(x)
    index.add(x)
    return index  # type: ignore[return-value]


# recall@10 against exact search on clustered(seed), seeds 0, 1, 2: default efSearch (16),
# then efSearch=64.
FLOORS = {
    ("HNSW8", "cos"): (0.95, 0.99),  # measured 0.977 0.982 0.980 / 1.000 1.000 1.000
    ("HNSW8", "l2"): (0.95, 0.99),  # measured 0.971 0.983 0.975 / 1.000 1.000 0.998
    ("HNSW8", "ip"): (0.92, 0.97),  # measured 0.945 0.941 0.948 / 0.985 0.980 0.986
    ("HNSW8,Int8", "cos"): (0.94, 0.97),  # measured 0.961 0.969 0.962 / 0.980 0.983 0.979
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("spec", "metric"), list(FLOORS))
def test_recall_against_exact_search(spec: str, metric: str, seed: int) -> None:
    x, q = clustered(seed)
    truth = exact(x, q, 10, metric)
    index = build(spec, x, metric)
    low, high = FLOORS[(spec, metric)]
    assert recall(index.search(q, 10)[1], truth) >= low
    assert recall(index.search(q, 10, efSearch=64)[1], truth) >= high


@pytest.mark.parametrize("metric", ["cos", "ip", "l2"])
def test_scores_are_embedlab_scores(metric: str) -> None:
    """Flat codes give exact scores of the found rows: dot products, or NEGATIVE squared
    distances under l2 (faiss returns positive distances)."""
    x, q = clustered(0, n=1000)
    index = build("HNSW16", x, metric)
    s, ids = index.search(q, 5, efSearch=64)
    ref = Flat(DIM, metric=metric)  # type: ignore[arg-type]
    ref.add(x)
    ref_s, ref_ids = ref.search(q, 5)
    assert recall(ids, ref_ids) >= 0.99
    same = ids == ref_ids
    np.testing.assert_allclose(s[same], ref_s[same], rtol=1e-4, atol=1e-3)
    assert (np.diff(s, axis=1) <= 0).all()
    if metric == "l2":
        assert (s <= 1e-4).all()


def test_int8_codes_equal_the_int8_index() -> None:
    x, _ = clustered(1, n=1000)
    index = build("HNSW8,Int8", x, "l2")
    ref = Int8(DIM, metric="l2")
    ref.train(x)
    storage = index.faiss_index.storage
    import faiss

    codes = faiss.vector_to_array(faiss.downcast_index(storage).codes).reshape(-1, DIM)
    assert (codes == ref.encode(x)).mean() >= 0.999  # float rounding at code boundaries
    assert index.memory_bytes() < build("HNSW8", x, "l2").memory_bytes()


@pytest.mark.parametrize(
    "spec",
    [
        "HNSW32",
        "HNSW8,Int8",
        "HNSW16(efSearch=64)",
        "HNSW16(efConstruction=80,efSearch=32),Int8",
        "HNSW8,Rerank(Flat,k_factor=5)",
        "HNSW8,Int8,Rerank(Flat,k_factor=20)",
    ],
)
def test_spec_round_trips_through_the_factory(spec: str) -> None:
    index = index_factory(DIM, spec)
    assert index.spec() == spec
    assert index_factory(DIM, index.spec()).spec() == spec


def test_factory_passes_m_and_code() -> None:
    index = index_factory(DIM, "HNSW12,Int8", metric="l2")
    assert isinstance(index, HNSW)
    assert index.M == 12 and isinstance(index.code, Int8) and index.metric == "l2"
    assert index.faiss_index.hnsw.nb_neighbors(0) == 24
    assert not index.is_trained


def test_ef_search_per_call() -> None:
    x, q = clustered(2)
    index = build("HNSW8", x)
    truth = exact(x, q, 10, "cos")
    narrow = recall(index.search(q, 10, efSearch=10)[1], truth)
    wide = recall(index.search(q, 10, efSearch=200)[1], truth)
    assert wide > narrow and wide >= 0.99
    assert index.efSearch == 16  # a per-call setting does not change the default
    # the default width is raised to k (as in faiss), no error
    assert (index.search(q[:3], 40)[1] >= 0).all()


def test_remove_keeps_tombstones_then_compacts(tmp_path: Path) -> None:
    x, q = clustered(0, n=2000)
    index = build("HNSW8", x)
    first = np.arange(0, 2000, 20)  # 5%: tombstones
    assert index.remove(first) == first.size
    assert index.n_rows == 2000 and index.ntotal == 1900
    _, ids = index.search(q, 20)
    assert (ids >= 0).all() and not np.isin(ids, first).any()
    truth = exact(np.delete(x, first, axis=0), q, 10, "cos")
    keep = np.delete(np.arange(2000), first)
    assert recall(index.search(q, 10, efSearch=64)[1], keep[truth]) >= 0.98
    # tombstones survive save / load and keep working
    index.save(tmp_path / "ix")
    loaded = load_index(tmp_path / "ix")
    assert isinstance(loaded, HNSW) and loaded.n_rows == 2000
    np.testing.assert_array_equal(loaded.search(q, 10)[1], index.search(q, 10)[1])
    assert loaded.memory_bytes() == index.memory_bytes()
    loaded.add(x[:3] + 0.5, ids=np.array([5000, 5001, 5002]))
    assert loaded.search(x[:1] + 0.5, 1)[1][0, 0] == 5000
    # past COMPACT_SHARE of the rows the graph is rebuilt from the live rows
    more = np.arange(1, 2000, 4)
    index.remove(more)
    assert (first.size + more.size) / 2000 > COMPACT_SHARE
    assert index.n_rows == index.ntotal == 2000 - first.size - more.size
    _, ids = index.search(q, 10)
    assert (ids >= 0).all() and not np.isin(ids, np.concatenate([first, more])).any()


def test_rebuild_keeps_int8_codes() -> None:
    x, _ = clustered(1, n=1500)
    index = build("HNSW8,Int8", x)
    import faiss

    def codes(ix: HNSW) -> np.ndarray:
        storage = faiss.downcast_index(ix.faiss_index.storage)
        return faiss.vector_to_array(storage.codes).reshape(-1, DIM)

    before = codes(index)
    gone = np.arange(0, 1500, 2)
    index.remove(gone)
    assert index.n_rows == 750
    np.testing.assert_array_equal(codes(index), np.delete(before, gone, axis=0))


def test_masked_search_returns_only_allowed_rows() -> None:
    x, q = clustered(0, n=3000)
    index = build("HNSW8", x)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    for share in (0.5, 0.01):
        mask = np.random.default_rng(3).random(3000) < share
        s, pos = index.search_positions(qn.astype(np.float32), 10, mask=mask)
        assert mask[pos[pos >= 0]].all()
        # retries with a wider ef reach k allowed rows even for a 1% mask
        assert ((pos >= 0).sum(axis=1) == min(10, int(mask.sum()))).all()
        assert (np.diff(s, axis=1) <= 0).all()


def test_padding_and_tiny_index() -> None:
    index = index_factory(DIM, "HNSW4")
    x, q = clustered(0, n=3)
    index.add(x, ids=np.array([7, 8, 9]))
    s, ids = index.search(q[:2], 5)
    assert (ids[:, 3:] == -1).all() and np.isneginf(s[:, 3:]).all()
    assert set(ids[0, :3]) == {7, 8, 9}


# ------------------------------------------------------------------------------ errors
def test_ef_search_below_k_is_an_error() -> None:
    x, q = clustered(0, n=500)
    index = build("HNSW8", x)
    with pytest.raises(ValueError, match=r"efSearch .* must be >= k .*efSearch=5 and k=10"):
        index.search(q, 10, efSearch=5)
    with pytest.raises(ValueError, match=r"efSearch must be >= 1, got 0"):
        index.search(q, 1, efSearch=0)
    with pytest.raises(TypeError, match=r"efSearch must be an integer, got 2.5"):
        index.search(q, 1, efSearch=2.5)
    with pytest.raises(ValueError, match=r"search parameter 'nprobe' is not taken by HNSW8; "):
        index.search(q, 1, nprobe=4)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"M": 1}, ValueError, r"M must be >= 2, got 1"),
        ({"M": 4096}, ValueError, r"M must be <= 1024, got 4096"),
        ({"M": "32"}, TypeError, r"M must be an integer, got '32'"),
        ({"efConstruction": 0}, ValueError, r"efConstruction must be >= 1, got 0"),
        ({"efSearch": -1}, ValueError, r"efSearch must be >= 1, got -1"),
    ],
)
def test_bad_hyper_parameters(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        HNSW(DIM, **kwargs)


def test_bad_code_indexes() -> None:
    with pytest.raises(
        ValueError, match=r"code must be an empty Flat or Int8 index .* got 'Binary'"
    ):
        HNSW(DIM, code=Binary(DIM))
    with pytest.raises(ValueError, match=r"code must be an empty Flat or Int8 .* got 'PQ8'"):
        index_factory(DIM, "HNSW16,PQ8")
    with pytest.raises(ValueError, match=r"code must have dim=32 and metric='cos', got dim=16"):
        HNSW(DIM, code=Flat(16))
    with pytest.raises(ValueError, match=r"code must have dim=32 and metric='cos', .*'l2'"):
        HNSW(DIM, code=Int8(DIM, metric="l2"))
    full = Flat(DIM)
    full.add(np.ones((2, DIM), np.float32))
    with pytest.raises(ValueError, match=r"code must be empty, got an index holding 2"):
        HNSW(DIM, code=full)
    with pytest.raises(ValueError, match=r"unknown hyper-parameter 'ef' for HNSW; valid: M, "):
        index_factory(DIM, "HNSW16(ef=3)")


def test_int8_code_must_be_trained_first_and_only_once() -> None:
    x, _ = clustered(0, n=300)
    index = index_factory(DIM, "HNSW8,Int8")
    with pytest.raises(ValueError, match=r"HNSW8,Int8 must be trained before add"):
        index.add(x)
    index.train(x)
    index.add(x)
    with pytest.raises(ValueError, match=r"HNSW8,Int8 already holds 300 vectors; train a new"):
        index.train(x)


def test_load_rejects_a_mismatched_graph(tmp_path: Path) -> None:
    import json

    x, _ = clustered(0, n=300)
    build("HNSW8", x).save(tmp_path / "ix")
    folder = data_folder(tmp_path / "ix")
    doc = json.loads((folder / "index.json").read_text())
    arrays = {
        "faiss_index": np.load(folder / "faiss_index.npy"),
        "dead_rows": np.zeros(0, np.int64),
    }
    meta = {**doc["meta"], "dim": DIM, "metric": "cos", "M": 16}
    with pytest.raises(ValueError, match=r"does not match index.json .*M=16"):
        HNSW._from_state(arrays, meta, tmp_path)
    meta["M"] = 8
    arrays["dead_rows"] = np.array([5, 300], np.int64)
    with pytest.raises(ValueError, match=r"dead_rows must be sorted unique rows of the graph"):
        HNSW._from_state(arrays, meta, tmp_path)
    arrays["faiss_index"] = np.zeros(10, np.uint8)
    with pytest.raises(ValueError, match=r"faiss cannot read the saved index"):
        HNSW._from_state(arrays, meta, tmp_path)


def test_rerank_over_hnsw_widens_efsearch_to_its_candidates() -> None:
    x = np.random.default_rng(7).standard_normal((500, 16)).astype(np.float32)
    index = index_factory(16, "HNSW8,Rerank(Flat,k_factor=10)")
    index.add(x)
    _, ids = index.search(x[:5], 10, efSearch=16)  # 100 candidates: the width follows
    assert (ids[:, 0] == np.arange(5)).all()
