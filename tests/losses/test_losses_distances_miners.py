"""Distances (is_inverted semantics), miners (valid triples, FaceNet rule) and the sampler."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from embedlab.losses.distances import (
    CosineSimilarity,
    DotProductSimilarity,
    LpDistance,
    make_distance,
)
from embedlab.miners import (
    AllPairsMiner,
    AllTripletsMiner,
    BatchHardMiner,
    ClassBalancedSampler,
    HardMiner,
    SemiHardMiner,
)

SEEDS = (0, 1, 2)


def batch(seed: int, n: int = 24, dim: int = 8, classes: int = 4) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=gen)
    return x, y


def test_is_inverted_semantics() -> None:
    x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.0]])
    for dist in (CosineSimilarity(), DotProductSimilarity()):
        assert dist.is_inverted
        m = dist.pairwise(x)
        assert m[0, 1] > m[0, 2]  # closer = bigger
    for dist in (LpDistance(), LpDistance(power=2), LpDistance(p=1)):
        assert not dist.is_inverted
        m = dist.pairwise(x)
        assert m[0, 1] < m[0, 2]  # closer = smaller
    # violation is positive when the negative is closer than the positive, for both kinds
    assert CosineSimilarity().violation(torch.tensor(0.2), torch.tensor(0.9)) > 0
    assert LpDistance().violation(torch.tensor(1.5), torch.tensor(0.3)) > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_distances_match_loops(seed: int) -> None:
    x, _ = batch(seed, n=6)
    y, _ = batch(seed + 10, n=5)
    xn = x / x.norm(dim=1, keepdim=True)
    yn = y / y.norm(dim=1, keepdim=True)
    cases = [
        (CosineSimilarity(), lambda a, b, na, nb: float(na @ nb)),
        (DotProductSimilarity(), lambda a, b, na, nb: float(a @ b)),
        (LpDistance(), lambda a, b, na, nb: float((na - nb).norm())),
        (LpDistance(power=2), lambda a, b, na, nb: float(((na - nb) ** 2).sum())),
        (
            LpDistance(p=1, normalize_embeddings=False),
            lambda a, b, na, nb: float((a - b).abs().sum()),
        ),
    ]
    for dist, ref in cases:
        mat = dist.pairwise(x, y)
        assert mat.shape == (6, 5)
        for i, j in itertools.product(range(6), range(5)):
            assert mat[i, j].item() == pytest.approx(
                ref(x[i], y[j], xn[i], yn[j]), rel=1e-9, abs=1e-12
            )
        pair = dist.pair(x[:5], y)
        assert torch.allclose(pair, mat[torch.arange(5), torch.arange(5)])


def test_make_distance_errors() -> None:
    assert isinstance(make_distance("cosine", LpDistance()), CosineSimilarity)
    with pytest.raises(ValueError, match=r"distance must be one of cosine, dot, l2, squared_l2"):
        make_distance("manhattan", LpDistance())
    with pytest.raises(ValueError, match=r"power must be 1 or 2, got 3"):
        LpDistance(power=3)


def check_valid(a: torch.Tensor, p: torch.Tensor, n: torch.Tensor, y: torch.Tensor) -> None:
    assert a.dtype == p.dtype == n.dtype == torch.int64
    assert len(a) == len(p) == len(n)
    assert bool((y[a] == y[p]).all())
    assert bool((a != p).all())
    assert bool((y[a] != y[n]).all())


@pytest.mark.parametrize("seed", SEEDS)
def test_all_triplets_is_complete(seed: int) -> None:
    x, y = batch(seed)
    a, p, n = AllTripletsMiner()(x, y)
    check_valid(a, p, n, y)
    expected = {
        (i, j, k)
        for i, j, k in itertools.product(range(len(y)), repeat=3)
        if i != j and y[i] == y[j] and y[k] != y[i]
    }
    assert set(zip(a.tolist(), p.tolist(), n.tolist(), strict=True)) == expected


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("distance", [None, CosineSimilarity(), LpDistance()])
def test_semihard_rule(seed: int, distance: object) -> None:
    x, y = batch(seed)
    margin = 0.3
    miner = SemiHardMiner(margin=margin, distance=distance)  # type: ignore[arg-type]
    a, p, n = miner(x, y)
    check_valid(a, p, n, y)
    dist = distance if distance is not None else LpDistance(power=2)
    d = dist.as_distance(dist.pairwise(x))  # type: ignore[attr-defined]
    dap, dan = d[a, p], d[a, n]
    assert len(a) > 0
    assert bool((dap < dan).all()) and bool((dan < dap + margin).all())
    # complete: every semi-hard triplet is returned
    count = sum(
        1
        for i, j, k in itertools.product(range(len(y)), repeat=3)
        if i != j and y[i] == y[j] and y[k] != y[i] and d[i, j] < d[i, k] < d[i, j] + margin
    )
    assert count == len(a)


@pytest.mark.parametrize("seed", SEEDS)
def test_hard_and_batch_hard(seed: int) -> None:
    x, y = batch(seed)
    d = LpDistance(power=2).pairwise(x)
    a, p, n = HardMiner()(x, y)
    check_valid(a, p, n, y)
    assert bool((d[a, n] <= d[a, p]).all())
    a, p, n = BatchHardMiner()(x, y)
    check_valid(a, p, n, y)
    for i, j, k in zip(a.tolist(), p.tolist(), n.tolist(), strict=True):
        same = [t for t in range(len(y)) if t != i and y[t] == y[i]]
        other = [t for t in range(len(y)) if y[t] != y[i]]
        assert d[i, j] == max(d[i, t] for t in same)
        assert d[i, k] == min(d[i, t] for t in other)


def test_all_pairs_miner() -> None:
    y = torch.tensor([0, 0, 1, 1, 1])
    a1, p, a2, n = AllPairsMiner()(torch.randn(5, 3), y)
    assert len(a1) == 2 + 6 and len(a2) == 12
    assert bool((y[a1] == y[p]).all()) and bool((a1 != p).all()) and bool((y[a2] != y[n]).all())


def test_miner_bad_input() -> None:
    with pytest.raises(ValueError, match=r"embeddings and labels must have the same batch size"):
        AllTripletsMiner()(torch.randn(4, 3), torch.tensor([0, 1, 0]))
    with pytest.raises(ValueError, match=r"embeddings must be finite"):
        AllTripletsMiner()(torch.full((4, 3), float("nan")), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"margin must be > 0, got -1"):
        SemiHardMiner(margin=-1)


def test_class_balanced_sampler() -> None:
    labels = np.repeat(np.arange(10), [5, 5, 5, 5, 5, 5, 5, 5, 5, 1])
    sampler = ClassBalancedSampler(labels, p=4, k=3, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == len(labels) // 12
    for b in batches:
        assert len(b) == 12
        counts = np.unique(labels[b], return_counts=True)[1]
        assert len(counts) == 4 and set(counts.tolist()) == {3}
    again = list(ClassBalancedSampler(labels, p=4, k=3, seed=0))
    assert again == batches
    with pytest.raises(ValueError, match=r"p must be <= the number of classes \(10\), got 11"):
        ClassBalancedSampler(labels, p=11, k=2)
    with pytest.raises(ValueError, match=r"k must be >= 1, got 0"):
        ClassBalancedSampler(labels, p=2, k=0)
