"""ECAML: the energy-confusion term vs a naive loop; weight 0 is the base loss."""

from __future__ import annotations

import math

import pytest
import torch

from embedlab._registry import parse_spec, split_specs
from embedlab.losses import ECAMLLoss, TripletLoss, make_loss


def naive_energy(x: torch.Tensor, y: torch.Tensor) -> float:
    """log of sum over ALL pairs i < j of 0.5 |f_i - f_j|^2 / (#pairs of the same kind)."""
    f = torch.nn.functional.normalize(x.double(), dim=-1).tolist()
    lab = y.tolist()
    n = len(lab)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    n_pos = sum(1 for i, j in pairs if lab[i] == lab[j])
    n_neg = len(pairs) - n_pos
    total = 0.0
    for i, j in pairs:
        sq = sum((a - b) ** 2 for a, b in zip(f[i], f[j], strict=True))
        total += 0.5 * sq / (n_pos if lab[i] == lab[j] else n_neg)
    return math.log(total)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_energy_with_all_pairs_matches_naive_loop(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(9, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (9,), generator=gen)
    loss = ECAMLLoss(n_random=100)  # more partners than the batch: every pair i < j
    assert float(loss.energy(x, y)) == pytest.approx(naive_energy(x, y), rel=1e-12)


def test_sampled_pairs_are_distinct_upper_triangle() -> None:
    loss = ECAMLLoss(n_random=3, seed=1)
    i, j = loss.sample_pairs(10)
    assert (i < j).all()
    assert len(set(zip(i.tolist(), j.tolist(), strict=True))) == i.numel()
    counts = torch.bincount(i, minlength=10)
    assert counts.tolist() == [3, 3, 3, 3, 3, 3, 3, 2, 1, 0]


def test_weight_zero_equals_base_loss() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 8, generator=gen)
    y = torch.arange(16) % 4
    base = TripletLoss()(x, y)
    wrapped = make_loss("ecaml(base=triplet, weight=0)")(x, y)
    assert torch.equal(base, wrapped)


def test_confusion_gradient_flows_and_pulls_pairs_together() -> None:
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(16, 8, generator=gen)
    y = torch.arange(16) % 4
    grads = []
    for weight in (0.0, 1.0):
        x = x0.clone().requires_grad_(True)
        make_loss(f"ecaml(base=triplet, weight={weight})")(x, y).backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        grads.append(x.grad)
    assert not torch.allclose(grads[0], grads[1])
    # a small step against the confusion gradient lowers the energy
    loss = ECAMLLoss(weight=1.0, n_random=100)
    x = x0.clone().requires_grad_(True)
    e0 = loss.energy(x, y)
    e0.backward()
    assert x.grad is not None
    e1 = loss.energy(x0 - 0.05 * x.grad, y)
    assert float(e1.detach()) < float(e0.detach())


def test_nested_base_spec_parses() -> None:
    specs = split_specs("triplet,ecaml(base=triplet(margin=0.1, miner=semihard), weight=0.2)")
    assert specs[1] == "ecaml(base=triplet(margin=0.1, miner=semihard), weight=0.2)"
    assert parse_spec(specs[1])[1]["base"] == "triplet(margin=0.1, miner=semihard)"
    loss = make_loss(specs[1], dim=8, n_classes=4)
    assert isinstance(loss, ECAMLLoss) and loss.weight == 0.2
    assert isinstance(loss.base_loss, TripletLoss) and loss.base_loss.margin == 0.1
    assert loss.hyper_parameters()["base_margin"] == 0.1


def test_bad_base_and_weight_raise() -> None:
    with pytest.raises(ValueError, match=r"loss must be one of .*got 'nope'"):
        make_loss("ecaml(base=nope)")
    with pytest.raises(ValueError, match="base must be a loss of"):
        make_loss("ecaml(base=mv_infonce)")
    with pytest.raises(ValueError, match="base must not be ecaml"):
        make_loss("ecaml(base=ecaml)")
    with pytest.raises(ValueError, match="weight must be >= 0"):
        make_loss("ecaml(weight=-1)")
