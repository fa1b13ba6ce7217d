"""The analysis kNN under any embedlab Distance (learned NeuralSnowflake included), exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedlab.analysis import hubness, k_occurrence, knn
from embedlab.losses import NeuralSnowflake
from embedlab.losses.distances import (
    CosineSimilarity,
    Distance,
    DotProductSimilarity,
    LpDistance,
)


def _snowflake(dim: int, seed: int, quasi: bool = False) -> NeuralSnowflake:
    """A snowflake with random (not initial) parameters, as after training."""
    torch.manual_seed(seed)
    sf = NeuralSnowflake(dim, quasi=quasi)
    with torch.no_grad():
        for p in sf.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return sf


def _brute(x: np.ndarray, k: int, dist: Distance) -> tuple[np.ndarray, np.ndarray]:
    """Float64 loop over all pairs (``dist.pair``, row by row); nearest first, ties by index."""
    n = x.shape[0]
    xt = torch.from_numpy(x.astype(np.float64))
    vals = np.empty((n, k))
    idx = np.empty((n, k), dtype=np.int64)
    with torch.no_grad():
        for i in range(n):
            d_i = dist.pair(xt[i : i + 1].expand(n, -1), xt)  # row-by-row form, not pairwise
            row = []
            for j in range(n):
                if j != i:
                    v = float(d_i[j])
                    row.append((-v if dist.is_inverted else v, j, v))
            row.sort()
            idx[i] = [r[1] for r in row[:k]]
            vals[i] = [r[2] for r in row[:k]]
    return vals, idx


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    "make",
    [
        lambda s: _snowflake(5, s),
        lambda s: _snowflake(5, s, quasi=True),
        lambda s: LpDistance(p=1, normalize_embeddings=False),
        lambda s: CosineSimilarity(),
        lambda s: DotProductSimilarity(),
    ],
    ids=["snowflake", "quasi_snowflake", "l1", "cosine", "dot"],
)
def test_matches_brute_force(make: object, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(30, 5))
    dist = make(seed)  # type: ignore[operator]
    vals, idx = knn(x, 4, distance=dist)
    ref_vals, ref_idx = _brute(x, 4, dist)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(vals, ref_vals, rtol=1e-10, atol=1e-12)
    assert vals.dtype == np.float64 and idx.dtype == np.int64


def test_blocks_and_ties_and_euclidean_agreement(monkeypatch: pytest.MonkeyPatch) -> None:
    import embedlab.analysis._knn_distance as mod

    x = np.random.default_rng(3).normal(size=(30, 3))
    x[7] = x[2]  # a duplicate: at distance 0, ties resolved by index
    monkeypatch.setattr(mod, "_BLOCK_ENTRIES", 64)  # several row blocks
    vals, idx = knn(x, 3, distance=LpDistance(normalize_embeddings=False))
    ref_vals, ref_idx = knn(x, 3)  # the default Euclidean path, unchanged
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(vals, ref_vals, rtol=1e-12)
    assert idx[2, 0] == 7 and idx[7, 0] == 2 and vals[2, 0] == 0.0
    assert (idx != np.arange(30)[:, None]).all()


def test_k_occurrence_and_hubness_take_the_distance() -> None:
    x = np.random.default_rng(4).normal(size=(30, 5))
    sf = _snowflake(5, 4)
    _, ref_idx = _brute(x, 3, sf)
    counts = k_occurrence(x, 3, distance=sf)
    np.testing.assert_array_equal(counts, np.bincount(ref_idx.ravel(), minlength=30))
    assert isinstance(hubness(x, 3, distance=sf), float)
    # a metric that re-weights coordinates changes the neighbours
    w = LpDistance(p=1, normalize_embeddings=False)
    assert not np.array_equal(k_occurrence(x, 3, distance=w), k_occurrence(x, 3))
    assert sf.training  # the module's mode is restored


def test_bad_distance() -> None:
    x = np.zeros((5, 2)) + np.arange(5)[:, None]
    with pytest.raises(TypeError, match=r"distance must be an embedlab Distance.*got str"):
        knn(x, 2, distance="cosine")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"NeuralSnowflake\(dim=3\)"):
        knn(x, 2, distance=NeuralSnowflake(3))
