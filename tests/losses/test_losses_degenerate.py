"""Degenerate batches over every registered loss: empty, one sample, half and double precision.

The rule (see :class:`embedlab.losses.MetricLoss`): an empty batch, or one without the pairs a
loss needs, gives a zero loss that is still connected to the graph; float16 / bfloat16 input
is computed in float32 and the loss comes back as float32.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch

from embedlab.losses import (
    LOSSES,
    LpDistance,
    MetricLoss,
    NoPairsWarning,
    TripletLoss,
    make_loss,
    mix_hidden,
)

DIM = 32
N_CLASSES = 4
NAMES = LOSSES.names()


def build(name: str) -> MetricLoss:
    return make_loss(name, dim=DIM, n_classes=N_CLASSES)


def prepare(loss: MetricLoss, x: torch.Tensor) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of ``loss`` for a batch built from ``x (batch, DIM)``."""
    n = x.shape[0]
    labels = torch.arange(n) % N_CLASSES
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = {}
    if loss.name == "starbucks":
        args = ([x, x * 2, x.flip(0), x * 0.5, x.roll(1, 0)], labels)
    elif loss.input_kind == "views":
        args = (torch.stack([x, x.roll(1, 1), x * 0.5 + 0.1], dim=1), labels)
    elif loss.input_kind == "pairs":
        b = x.flip(1) * 0.5 + 0.1
        if loss.name == "mimix":
            mixed, lam, perm = mix_hidden(b, generator=torch.Generator().manual_seed(0))
            args, kwargs = (x, mixed), {"lam": lam, "perm": perm}
        else:
            args = (x, b)
    elif loss.float_labels:
        args = (x, labels.to(torch.float64) / 2)
    else:
        args = (x, labels)
    return args, kwargs


def call(loss: MetricLoss, x: torch.Tensor) -> torch.Tensor:
    args, kwargs = prepare(loss, x)
    out: torch.Tensor = loss(*args, **kwargs)
    return out


def as_float32(value: Any) -> Any:
    """``value`` with its half-precision tensors (also in lists) given as float32."""
    if isinstance(value, torch.Tensor):
        return value.detach().float() if value.dtype in (torch.float16, torch.bfloat16) else value
    if isinstance(value, (list, tuple)):
        return type(value)(as_float32(v) for v in value)
    if isinstance(value, dict):
        return {k: as_float32(v) for k, v in value.items()}
    return value


def assert_connected(out: torch.Tensor, x: torch.Tensor, loss: MetricLoss) -> None:
    out.backward()
    assert x.grad is not None and x.grad.shape == x.shape and x.grad.dtype == x.dtype
    assert torch.isfinite(x.grad).all()
    for p in loss.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_is_a_connected_zero_with_warning(name: str) -> None:
    loss = build(name)
    x = torch.randn(0, DIM, requires_grad=True)
    with pytest.warns(NoPairsWarning, match=r"empty batch \(0 rows\): the loss is 0"):
        out = call(loss, x)
    assert out.shape == () and out.dtype == torch.float32
    assert out.item() == 0.0
    assert out.requires_grad
    assert_connected(out, x, loss)
    for p in loss.parameters():  # Hydra's gates: connected, gradient 0
        assert p.grad is not None and float(p.grad.abs().sum()) == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_one_sample_is_finite_and_differentiable(name: str) -> None:
    loss = build(name)
    x = torch.randn(1, DIM, generator=torch.Generator().manual_seed(0), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoPairsWarning)  # no pair in one sample: zero loss
        out = call(loss, x)
    assert out.shape == () and torch.isfinite(out)
    if name != "ebv":  # EBV compares with fixed class vectors: one sample is a real loss
        assert out.item() == 0.0
    assert_connected(out, x, loss)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(name: str, dtype: torch.dtype) -> None:
    x = torch.randn(16, DIM, generator=torch.Generator().manual_seed(1)).to(dtype)
    x.requires_grad_(True)
    args, kwargs = prepare(build(name), x)
    out = build(name)(*args, **kwargs)
    assert out.shape == () and out.dtype == torch.float32
    assert torch.isfinite(out)
    # the reference: the same (rounded) numbers handed over as float32 by the caller
    ref = build(name)(*as_float32(args), **as_float32(kwargs))
    assert out.item() == ref.item()
    out.backward()
    assert x.grad is not None and x.grad.dtype == dtype and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_float64_matches_float32(name: str) -> None:
    x = torch.randn(16, DIM, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = call(build(name), x.clone().requires_grad_(True))
    assert out.dtype == torch.float64 and torch.isfinite(out)
    ref = call(build(name), x.float())
    assert out.item() == pytest.approx(ref.item(), rel=1e-3, abs=1e-4)


def test_distance_accepts_half_precision() -> None:
    # torch.cdist has no float16 kernel on CPU; LpDistance(p=1) goes through it
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    d = LpDistance(p=1, normalize_embeddings=False)
    out = d.pairwise(x.half())
    assert out.dtype == torch.float32
    ref = torch.tensor(
        [[float((a - b).abs().sum()) for b in x.half().float()] for a in x.half().float()]
    )
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_no_mined_triplet_is_a_connected_zero() -> None:
    # two far apart classes: no semi-hard triplet exists
    x = torch.tensor([[1.0, 0.0], [1.0, 0.01], [-1.0, 0.0], [-1.0, 0.01]], requires_grad=True)
    out = TripletLoss(margin=0.1, miner="semihard")(x, torch.tensor([0, 0, 1, 1]))
    assert out.item() == 0.0
    out.backward()
    assert x.grad is not None and float(x.grad.abs().sum()) == 0.0


def test_wrong_shapes_still_raise_on_empty_batches() -> None:
    with pytest.raises(
        ValueError, match=r"embeddings and labels must have the same batch size, got 0 and 3"
    ):
        build("supcon")(torch.randn(0, DIM), torch.arange(3))
    with pytest.raises(ValueError, match=r"embeddings must have dim=32, got 5"):
        build("ebv")(torch.randn(0, 5), torch.arange(0))
    with pytest.raises(ValueError, match=r"lam and perm must have shape \(0,\), got \(2,\)"):
        build("mimix")(
            torch.randn(0, DIM), torch.randn(0, DIM), lam=torch.ones(2), perm=torch.arange(2)
        )
