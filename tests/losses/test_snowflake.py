"""NeuralSnowflake: (quasi-)metric axioms, naive reference, every `distance=` loss, training."""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from embedlab.data import LabeledData
from embedlab.losses import LOSSES, NeuralSnowflake, make_loss
from embedlab.training.encoders import MLPEncoder
from embedlab.training.metric import MetricTrainer


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread: on a busy machine several threads spin and cost far more CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _random_snowflake(seed: int, *, quasi: bool, dim: int = 3) -> NeuralSnowflake:
    """A snowflake with randomised (still valid) parameters, in float64."""
    torch.manual_seed(seed)
    snow = NeuralSnowflake(dim, width=4, depth=2, quasi=quasi, power=1.7 if quasi else 0.6)
    with torch.no_grad():
        for p in snow.parameters():
            p.add_(torch.randn_like(p))
    return snow.double()


def _naive_f(snow: NeuralSnowflake, t: float) -> float:
    """f(t) by explicit float64 loops over the units (independent of the tensor code)."""

    def g(t: float) -> float:
        u = [t]
        for j in range(snow.depth):
            a = torch.exp(snow.log_a[j]).tolist()
            b = torch.exp(snow.log_b[j]).tolist()
            s = torch.sigmoid(snow.exponent_logits[j]).tolist()
            z = [sum(a[k][i] * u[i] for i in range(len(u))) for k in range(snow.width)]
            feats = (
                [1 - math.exp(-zk) for zk in z]
                + [math.log(1 + zk) for zk in z]
                + [(zk + 1e-6) ** s[k] - 1e-6 ** s[k] for k, zk in enumerate(z)]
            )
            u = [sum(b[k][i] * feats[i] for i in range(len(feats))) for k in range(snow.width)]
        out = sum(w * uk for w, uk in zip(torch.exp(snow.log_out).tolist(), u, strict=True))
        out += math.exp(snow.log_linear.item()) * t
        p = snow.final_power().item()
        return float((out + 1e-6) ** p - 1e-6**p)

    return g(t) / g(1.0)


def test_matches_naive_reference() -> None:
    snow = _random_snowflake(0, quasi=False)
    x = torch.randn(5, 3, dtype=torch.float64)
    w = snow.coordinate_weights().detach().tolist()
    mat = snow.pairwise(x).detach()
    for i, j in itertools.product(range(5), range(5)):
        t = math.sqrt(sum((w[k] * (x[i, k] - x[j, k]).item()) ** 2 for k in range(3)))
        assert mat[i, j].item() == pytest.approx(_naive_f(snow, t), rel=1e-9, abs=1e-12)
    assert torch.allclose(snow.pair(x, x.flip(0)), mat[torch.arange(5), torch.arange(4, -1, -1)])


@pytest.mark.parametrize(("seed", "quasi"), [(0, False), (1, False), (2, True), (3, True)])
def test_quasi_metric_axioms(seed: int, quasi: bool) -> None:
    snow = _random_snowflake(seed, quasi=quasi)
    x = torch.randn(30, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    x = torch.cat([x, x[:2]])  # duplicated points: distance exactly zero
    d = snow.pairwise(x).detach()
    n = d.shape[0]
    same = (x[:, None, :] == x[None, :, :]).all(-1)
    assert (d >= 0).all()
    assert (d[same] == 0).all()  # identity of indiscernibles
    assert (d[~same] > 0).all()
    assert torch.allclose(d, d.T, rtol=0, atol=1e-12)  # symmetry
    k = snow.quasi_constant()
    assert (k == 1.0) != quasi
    worst = (d[:, None, :] - k * (d[:, :, None] + d[None, :, :])).max()  # d(i,l) vs d(i,j)+d(j,l)
    assert worst <= 1e-9 * float(d.max()), f"triangle inequality violated by {worst}"
    assert n == 32


def test_quasi_snowflake_breaks_the_plain_triangle_inequality() -> None:
    # A power > 1 gives a genuine quasi-metric: collinear points violate d(a,c) <= d(a,b)+d(b,c).
    snow = NeuralSnowflake(1, width=2, depth=1, quasi=True, power=3.0).double()
    x = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
    d = snow.pairwise(x).detach()
    assert d[0, 2] > d[0, 1] + d[1, 2]
    assert d[0, 2] <= snow.quasi_constant() * (d[0, 1] + d[1, 2])


def _distance_losses() -> list[str]:
    return [
        name
        for name in LOSSES.names()
        if "distance" in inspect.signature(LOSSES.get(name).__init__).parameters
    ]


@pytest.mark.parametrize("name", _distance_losses())
def test_every_distance_loss_trains_the_snowflake(name: str) -> None:
    snow = NeuralSnowflake(dim=8)
    loss = make_loss(name, distance=snow, dim=8, n_classes=4)
    own = {id(p) for p in snow.parameters()}
    assert own <= {id(p) for p in loss.parameters()}  # registered as a submodule
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(16, 8, generator=gen, requires_grad=True)
    labels = torch.arange(16) % 4
    out = loss(emb, labels)
    assert out.shape == () and torch.isfinite(out)
    out.backward()
    grads = [p.grad for p in snow.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads if g is not None)
    assert emb.grad is not None and torch.isfinite(emb.grad).all()


def test_metric_trainer_optimises_the_snowflake() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 20)
    x = (rng.standard_normal((80, 6)) + y[:, None]).astype(np.float32)
    snow = NeuralSnowflake(dim=8)
    before = [p.detach().clone() for p in snow.parameters()]
    loss = make_loss("triplet", distance=snow)
    enc = MLPEncoder(8, in_features=6, seed=0)
    MetricTrainer(epochs=1, batch_size=40, progress=False).fit(enc, loss, LabeledData(x, y))
    after = list(snow.parameters())
    assert all(not torch.equal(a, b.detach()) for a, b in zip(before, after, strict=True))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"power": 0.0}, r"power must be > 0"),
        ({"power": -1.0, "quasi": True}, r"power must be > 0"),
        ({"power": 1.5}, r"power must be in \(0, 1\) for the metric snowflake"),
        ({"scale": 0.0}, r"scale must be > 0"),
        ({"scale": -2.0}, r"scale must be > 0"),
        ({"exponent": 0.0}, r"exponent must be > 0"),
        ({"exponent": 1.0}, r"exponent must be in \(0, 1\)"),
        ({"width": 0}, r"width must be >= 1"),
        ({"depth": 0}, r"depth must be >= 1"),
        ({"power": math.nan}, r"power must be finite"),
    ],
)
def test_bad_parameters(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        NeuralSnowflake(4, **kwargs)  # type: ignore[arg-type]


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"dim must be >= 1"):
        NeuralSnowflake(0)
    with pytest.raises(ValueError, match=r"embeddings must have shape \(n, 4\)"):
        NeuralSnowflake(4).pairwise(torch.zeros(3, 5))
