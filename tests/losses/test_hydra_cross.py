"""Hydra with cross-class (arbitrary) positive pairs against a naive float64 loop."""

from __future__ import annotations

import math

import pytest
import torch

from embedlab.losses import HydraLoss, make_loss


def _ref(loss: HydraLoss, x: torch.Tensor, y: torch.Tensor, partner: torch.Tensor) -> float:
    with torch.no_grad():
        g = torch.sigmoid(loss.gate_logits().double())
    xs = [v.double() / v.double().norm() for v in x]
    n, t = len(y), loss.temperature

    def s(i: int, j: int) -> float:
        gate = g[int(y[i]), int(partner[i])]
        u, v = gate * xs[i], gate * xs[j]
        return float(u @ v) / math.sqrt(float(u @ u) * float(v @ v)) / t

    terms = []
    for i in range(n):
        negs = [j for j in range(n) if int(y[j]) not in (int(y[i]), int(partner[i]))]
        for q in range(n):
            if q == i or int(y[q]) != int(partner[i]):
                continue
            denom = math.log(math.exp(s(i, q)) + sum(math.exp(s(i, j)) for j in negs))
            terms.append(denom - s(i, q))
    return sum(terms) / len(terms) + loss.sparsity * float(g.mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rank", [None, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cross_loss_matches_a_loop(seed: int, rank: int | None, dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(10, 6, generator=gen, dtype=torch.float64).to(dtype)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 1, 0])
    partner = y[torch.randperm(10, generator=gen)]
    loss = HydraLoss(dim=6, n_classes=4, rank=rank, seed=seed, temperature=0.3, cross=True)
    ours = loss.cross_loss(x, y, partner).detach()
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert float(ours) == pytest.approx(_ref(loss, x, y, partner), rel=tol)
    assert ours.dtype == dtype


def test_forward_draws_partners_from_the_batch_and_is_seeded() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    y = torch.arange(12) % 3
    a = make_loss("hydra(cross=true, seed=4)", dim=5, n_classes=3).double()
    b = make_loss("hydra(cross=true, seed=4)", dim=5, n_classes=3).double()
    assert isinstance(a, HydraLoss) and a.cross
    assert torch.equal(a(x, y), b(x, y))  # same seed, same partners
    # the partners are the labels of a permutation drawn from seed + 1
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(5))
    c = HydraLoss(dim=5, n_classes=3, seed=4, cross=True).double()
    with torch.no_grad():
        drawn, given = c(x, y), c.cross_loss(x, y, y[perm])
    assert float(drawn) == pytest.approx(float(given), rel=1e-12)
    # gradients reach the embeddings and the gates of the drawn pairs
    xg = x.clone().requires_grad_(True)
    out = c(xg, y)
    out.backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()
    assert c.gates.grad is not None and torch.isfinite(c.gates.grad).all()


def test_default_is_the_same_class_loss() -> None:
    # the same-class formula itself is checked in test_losses_reference.py::test_hydra
    x, y = torch.randn(8, 4), torch.arange(8) % 4
    default = HydraLoss(dim=4, n_classes=4)
    assert not default.cross and "cross=False" in repr(default)
    explicit = HydraLoss(dim=4, n_classes=4, cross=False)
    cross = HydraLoss(dim=4, n_classes=4, cross=True)
    with torch.no_grad():
        assert torch.equal(default(x, y), explicit(x, y))
        assert not torch.allclose(default(x, y), cross(x, y))


def test_no_negatives_and_no_positives_stay_finite() -> None:
    loss = HydraLoss(dim=3, n_classes=2, cross=True).double()
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 0, 1, 1])
    out = loss.cross_loss(x, y, torch.tensor([1, 1, 0, 0]))  # two classes: no negatives
    out.backward()
    assert torch.isfinite(out) and x.grad is not None and torch.isfinite(x.grad).all()
    out2 = loss.cross_loss(x, torch.tensor([0, 1, 1, 1]), torch.tensor([0, 0, 0, 0]))
    assert torch.isfinite(out2)  # row 0's partner class 0 has no other row


def test_cross_errors_name_the_parameter() -> None:
    loss = HydraLoss(dim=3, n_classes=2, cross=True)
    x, y = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="partners"):
        loss.cross_loss(x, y, torch.tensor([0, 5, 1, 1]))
    with pytest.raises(ValueError, match="partners must have the labels' shape"):
        loss.cross_loss(x, y, torch.tensor([0, 1]))
    with pytest.raises((TypeError, ValueError), match="cross"):
        HydraLoss(dim=3, n_classes=2, cross="yes")  # type: ignore[arg-type]
