"""Model soups: uniform and greedy averaging of fine-tuned weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from embedlab.training.soup import greedy_soup, uniform_soup


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def test_uniform_soup_of_identical_models_is_the_model() -> None:
    net = _net(0)
    soup = uniform_soup([net, net, net])
    for k, v in net.state_dict().items():
        assert torch.equal(soup[k], v), k
    x = torch.randn(5, 4)
    other = _net(1)
    other.load_state_dict(soup)
    net.eval()
    other.eval()
    assert torch.equal(other(x), net(x))


def test_uniform_soup_is_the_mean_against_a_float64_loop() -> None:
    nets = [_net(s) for s in range(3)]
    soup = uniform_soup([n.state_dict() for n in nets])
    for k, v in soup.items():
        if not v.is_floating_point():
            assert torch.equal(v, nets[0].state_dict()[k])  # num_batches_tracked
            continue
        ref = sum(n.state_dict()[k].double() for n in nets) / 3
        assert torch.allclose(v.double(), ref, atol=1e-7), k
        assert v.dtype == torch.float32


def test_soup_of_different_architectures_names_the_parameter() -> None:
    a = nn.Linear(4, 3)
    with pytest.raises(ValueError, match=r"parameter 'weight' must have the same shape"):
        uniform_soup([a, nn.Linear(5, 3)])
    with pytest.raises(ValueError, match=r"missing \['bias'\]"):
        uniform_soup([a, nn.Linear(4, 3, bias=False)])
    with pytest.raises(ValueError, match=r"parameter 'weight' must have the same dtype"):
        uniform_soup([a, nn.Linear(4, 3).double()])
    with pytest.raises(ValueError, match="at least 1 model"):
        uniform_soup([])
    with pytest.raises(TypeError, match=r"ingredients\[1\] must be"):
        uniform_soup([a, 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="ingredients must be a sequence"):
        uniform_soup(a)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_soup_never_worse_than_the_best_ingredient(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(6, generator=g)
    # ingredients scattered around a target; the held-out fn is non-convex in the weights
    ings = [{"w": target + torch.randn(6, generator=g)} for _ in range(6)]

    def evaluate(state: dict[str, torch.Tensor]) -> float:
        d = state["w"] - target
        return float(-(d.norm() + 0.5 * torch.sin(5 * d).sum()))

    res = greedy_soup(ings, evaluate)
    best = max(evaluate(i) for i in ings)
    assert res.score >= best
    assert res.score == pytest.approx(evaluate(res.state_dict))
    assert res.ingredient_scores == [evaluate(i) for i in ings]
    assert res.kept[0] == max(range(6), key=lambda i: res.ingredient_scores[i])
    ref = sum(ings[i]["w"].double() for i in res.kept) / len(res.kept)
    assert torch.allclose(res.state_dict["w"].double(), ref, atol=1e-6)
    assert len(res.history) == 5
    assert [i for i, _, keep in res.history if keep] == res.kept[1:]


def test_greedy_soup_keeps_helpful_ingredients_and_drops_a_bad_one() -> None:
    # symmetric noise around the optimum: averaging helps; one far-away ingredient hurts
    ings = [{"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([-1.0, 0.0])}]
    ings.append({"w": torch.tensor([0.0, 50.0])})

    def evaluate(state: dict[str, torch.Tensor]) -> float:
        return -float(state["w"].norm())

    res = greedy_soup(ings, evaluate)
    assert sorted(res.kept) == [0, 1]
    assert res.score == 0.0


def test_greedy_soup_rejects_non_finite_scores() -> None:
    with pytest.raises(ValueError, match="evaluate must return a finite score"):
        greedy_soup([nn.Linear(2, 1)], lambda s: float("nan"))
    with pytest.raises(TypeError, match="evaluate must be callable"):
        greedy_soup([nn.Linear(2, 1)], 3)  # type: ignore[arg-type]
