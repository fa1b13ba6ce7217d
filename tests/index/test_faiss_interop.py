"""to_faiss / from_faiss: same results both ways, ids kept, scores converted as documented."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from embedlab.index import index_factory
from embedlab.index.faiss_interop import from_faiss, to_faiss


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((2000, 16)).astype(np.float32)


@pytest.mark.parametrize("spec", ["Flat", "PQ4", "HNSW8", "IVF16,Flat", "IVF16,PQ4"])
@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_round_trip(spec: str, metric: str, x: np.ndarray) -> None:
    ours = index_factory(16, spec, metric=metric)  # type: ignore[arg-type]
    ours.train(x)
    ours.add(x, ids=np.arange(5000, 7000))
    params = {"nprobe": 16} if spec.startswith("IVF") else {}
    s1, i1 = ours.search(x[:30], 10, **params)
    theirs = to_faiss(ours)
    if spec.startswith("IVF"):
        faiss.extract_index_ivf(theirs).nprobe = 16
    if spec.startswith("HNSW"):
        faiss.downcast_index(theirs.index).hnsw.efSearch = ours.efSearch  # type: ignore[attr-defined]
    d, i2 = theirs.search(x[:30], 10)
    scores = -d if metric == "l2" else d  # faiss: L2 distances; embedlab: higher is better
    assert (i1 == i2).mean() > 0.97  # ties may order differently; measured 1.0
    np.testing.assert_allclose(np.sort(scores, axis=1), np.sort(s1, axis=1), rtol=1e-4, atol=1e-4)
    back = from_faiss(theirs)
    assert back.metric == metric and back.ntotal == 2000
    _, i3 = back.search(x[:30], 10, **params)
    assert (i3 == i1).mean() > 0.97
    assert set(back.ids.tolist()) == set(range(5000, 7000))


def test_errors(x: np.ndarray) -> None:
    with pytest.raises(TypeError, match=r"to_faiss supports Flat, PQ\{m\}"):
        to_faiss(index_factory(16, "Binary"))
    with pytest.raises(TypeError, match=r"from_faiss supports"):
        from_faiss(faiss.IndexLSH(16, 32))
    with pytest.raises(ValueError, match=r"metric 'l2' does not match the faiss index's 'ip'"):
        from_faiss(faiss.IndexFlatIP(16), metric="l2")
    q4 = faiss.IndexIVFPQ(faiss.IndexFlatL2(16), 16, 4, 4, 4)
    q4.train(x)
    with pytest.raises(TypeError, match=r"8-bit codes by residual; got nbits=4"):
        from_faiss(q4)
    with pytest.raises(TypeError, match=r"to_faiss supports"):
        to_faiss(index_factory(16, "IVF4,Binary"))
    hnsw = index_factory(16, "HNSW8")
    hnsw.add(x[:100])
    hnsw.remove([3])
    with pytest.raises(ValueError, match=r"removed rows not yet compacted"):
        to_faiss(hnsw)


def test_cosine_exports_unit_vectors(x: np.ndarray) -> None:
    ours = index_factory(16, "Flat", metric="cos")
    ours.add(x)
    theirs = to_faiss(ours)
    q = x[:5].copy()
    faiss.normalize_L2(q)  # the caller normalises queries, as documented
    np.testing.assert_array_equal(theirs.search(q, 5)[1], ours.search(x[:5], 5)[1])
    assert (
        from_faiss(theirs, metric="cos").search(x[:5], 5)[1].tolist()
        == ours.search(x[:5], 5)[1].tolist()
    )
