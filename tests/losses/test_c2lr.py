"""C²LR: weighted SimCLR against a float64 loop; the phase switch; the trainer's feeding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from embedlab.data import LabeledData
from embedlab.losses import C2LRLoss, InfoNCELoss, MIMixLoss, make_loss, weighted_simclr
from embedlab.training import MetricTrainer
from embedlab.training.encoders import MLPEncoder


def _ref(a: torch.Tensor, b: torch.Tensor, t: float, beta: float) -> float:
    z = [v.double() / v.double().norm() for v in torch.cat([a, b])]
    n2 = len(z)
    out = []
    for r in range(n2):
        p = (r + n2 // 2) % n2
        pos = math.exp(float(z[r] @ z[p]) / t)
        negs = [math.exp(float(z[r] @ z[k]) / t) for k in range(n2) if k not in (r, p)]
        w = [e**beta for e in negs]
        ng = sum(wi * e for wi, e in zip(w, negs, strict=True)) / (sum(w) / len(w))
        out.append(-math.log(pos / (ng + pos)))
    return sum(out) / n2


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
def test_weighted_simclr_matches_a_loop(seed: int, beta: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    b = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    ours = float(weighted_simclr(a, b, temperature=0.5, hardness=beta))
    assert ours == pytest.approx(_ref(a, b, 0.5, beta), rel=1e-10)


def test_hardness_zero_is_simclr() -> None:
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(8, 4, generator=gen), torch.randn(8, 4, generator=gen)
    plain = InfoNCELoss(temperature=0.2)(torch.cat([a, b]), None)
    ours = weighted_simclr(a, b, temperature=0.2, hardness=0.0)
    assert float(ours) == pytest.approx(float(plain), rel=1e-5)


def test_phase_switch_follows_the_epoch() -> None:
    loss = make_loss("c2lr(switch=0.34)")
    assert isinstance(loss, C2LRLoss)
    phases = []
    for e in range(1, 7):
        loss.set_epoch(e, 6)
        phases.append((loss.phase, loss.phase_input_kind()))
    assert phases == [(1, "pairs")] * 2 + [(2, "mix")] * 4
    loss.set_epoch(1, 3)  # the authors' 1 of 3 epochs
    assert loss.phase == 1
    loss.set_epoch(2, 3)
    assert loss.phase == 2
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    lam, perm = torch.full((6,), 0.7), torch.roll(torch.arange(6), 1)
    ref = MIMixLoss(temperature=0.05)(a, b, lam=lam, perm=perm)
    assert torch.equal(loss(a, b, lam=lam, perm=perm), ref)
    loss.set_epoch(1, 3)
    with pytest.raises(ValueError, match="lam and perm must be None in phase 1"):
        loss(a, b, lam=lam, perm=perm)
    with pytest.raises(ValueError, match=r"switch must be in \[0, 1\]"):
        C2LRLoss(switch=1.5)
    with pytest.raises(ValueError, match="epoch must be >= 1"):
        loss.set_epoch(0, 3)


class _Spy(C2LRLoss):
    def __init__(self) -> None:
        super().__init__(switch=0.5)
        self.seen: list[tuple[int, bool]] = []

    def forward(self, a, b, *, lam=None, perm=None):  # type: ignore[no-untyped-def, override]
        self.seen.append((self.phase, lam is not None))
        return super().forward(a, b, lam=lam, perm=perm)


def test_trainer_switches_phase_and_feeds_each_phase() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 8)
    x = (rng.normal(size=(24, 6)) + y[:, None]).astype(np.float32)
    data = LabeledData(x=x, y=y.astype(np.int64), name="toy")
    spy = _Spy()
    trainer = MetricTrainer(epochs=4, batch_size=12, progress=False, augment=False)
    trainer.fit(MLPEncoder(4, in_features=6, hidden=(8,)), spy, data)
    by_phase = {(p, mixed) for p, mixed in spy.seen}
    assert by_phase == {(1, False), (2, True)}
    n = len(spy.seen) // 4
    assert spy.seen[: 2 * n] == [(1, False)] * (2 * n)  # epochs 1-2: phase I
