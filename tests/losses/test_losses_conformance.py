"""Conformance over every registered loss: finite, differentiable, both dtypes; bad input."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from embedlab.losses import LOSSES, MetricLoss, NoPairsWarning, make_loss, mix_hidden

DIM = 32
N_CLASSES = 4
NAMES = LOSSES.names()


def build(name: str) -> MetricLoss:
    return make_loss(name, dim=DIM, n_classes=N_CLASSES)


def inputs(
    loss: MetricLoss, x: torch.Tensor, labels: torch.Tensor
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of ``loss`` for embeddings ``x (batch, DIM)`` of labelled data."""
    name = loss.name
    if name == "starbucks":
        return ([x, x * 2, x.flip(0), x * 0.5, x.roll(1, 0)], labels), {}
    if loss.input_kind == "views":
        return (torch.stack([x, x.roll(1, 1), x * 0.5 + 0.1], dim=1), labels), {}
    if loss.input_kind == "pairs":
        half = x.shape[0] // 2
        a, b = x[:half], x[half:]
        if name == "mimix":
            mixed, lam, perm = mix_hidden(b, generator=torch.Generator().manual_seed(0))
            return (a, mixed), {"lam": lam, "perm": perm}
        return (a, b), {}
    if loss.float_labels:
        return (x, labels.to(x.dtype) / 2), {}
    return (x, labels), {}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_and_differentiable(name: str, dtype: torch.dtype) -> None:
    loss = build(name)
    assert loss.input_kind in ("labels", "views", "pairs")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, DIM, generator=gen, dtype=dtype, requires_grad=True)
    labels = torch.arange(16) % N_CLASSES
    args, kwargs = inputs(loss, x, labels)
    out = loss(*args, **kwargs)
    assert out.shape == () and out.dtype == dtype
    assert torch.isfinite(out)
    out.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert float(x.grad.abs().sum()) > 0
    for p in loss.parameters():  # learnable parts (Hydra gates) get gradients too
        assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_nan_embeddings_raise(name: str) -> None:
    loss = build(name)
    x = torch.randn(16, DIM)
    x[3, 5] = float("nan")
    args, kwargs = inputs(loss, x, torch.arange(16) % N_CLASSES)
    with pytest.raises(ValueError, match=r"must be finite, got a non-finite value at index"):
        loss(*args, **kwargs)


LABELLED = [n for n in NAMES if build(n).input_kind == "labels" and n != "starbucks"]


@pytest.mark.parametrize("name", LABELLED)
def test_mismatched_batch_raises(name: str) -> None:
    loss = build(name)
    labels = torch.arange(15) % N_CLASSES
    x = torch.randn(16, DIM)
    if loss.float_labels:
        labels = labels.double()
    with pytest.raises(
        ValueError, match=r"embeddings and labels must have the same batch size, got 16 and 15"
    ):
        loss(x, labels)


NEEDS_POS = [n for n in NAMES if LOSSES.get(n).needs_positives]
NEEDS_NEG = [n for n in NAMES if LOSSES.get(n).needs_negatives and n in LABELLED]


@pytest.mark.parametrize("name", NEEDS_POS)
def test_one_sample_per_class_is_zero_with_warning(name: str) -> None:
    loss = make_loss(name, dim=DIM, n_classes=16)
    x = torch.randn(16, DIM, requires_grad=True)
    with pytest.warns(NoPairsWarning, match=r"no positive pairs in the batch"):
        out = loss(x, torch.arange(16))
    assert out.item() == 0.0 and not torch.isnan(out)
    out.backward()


@pytest.mark.parametrize("name", NEEDS_NEG)
def test_all_same_labels_is_zero_with_warning(name: str) -> None:
    loss = build(name)
    x = torch.randn(16, DIM, requires_grad=True)
    labels = torch.zeros(16, dtype=torch.float64 if loss.float_labels else torch.int64)
    with pytest.warns(NoPairsWarning, match=r"no negative pairs in the batch"):
        out = loss(x, labels)
    assert out.item() == 0.0 and not torch.isnan(out)


def test_unknown_loss_lists_valid_ones() -> None:
    with pytest.raises(
        ValueError, match=r"loss must be one of .*contrastive, .*, triplet; got 'tripplet'"
    ):
        make_loss("tripplet", dim=DIM, n_classes=N_CLASSES)


def test_unknown_hyper_parameter_and_spec() -> None:
    with pytest.raises(ValueError, match=r"unknown hyper-parameter 'margn' for loss 'triplet'"):
        make_loss("triplet(margn=0.1)", dim=DIM, n_classes=N_CLASSES)
    loss = make_loss("triplet(margin=0.1, miner=semihard)", dim=DIM, n_classes=N_CLASSES)
    assert loss.margin == 0.1  # type: ignore[attr-defined]
    assert loss.miner.margin == 0.1  # type: ignore[attr-defined]
    ebv = make_loss("ebv(temperature=0.1)", dim=DIM, n_classes=N_CLASSES)
    assert ebv.vectors.shape == (N_CLASSES, DIM)  # type: ignore[attr-defined]
    m = make_loss("matryoshka(base=supcon, dims=8-16-32)", dim=DIM, n_classes=N_CLASSES)
    assert m.dims == (8, 16, 32)  # type: ignore[attr-defined]


def test_dim_and_classes_only_where_the_loss_needs_them() -> None:
    assert make_loss("triplet").margin > 0  # type: ignore[attr-defined]
    assert make_loss("matryoshka(base=supcon, dims=[8, 16, 32])").dims == (8, 16, 32)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"loss 'ebv' needs dim="):
        make_loss("ebv")


def test_infonce_takes_two_views_as_two_arguments() -> None:
    from embedlab.losses import InfoNCELoss

    a, b = torch.randn(8, DIM), torch.randn(8, DIM)
    loss = InfoNCELoss(temperature=0.1)
    assert torch.equal(loss(a, b), loss(torch.cat([a, b])))


def test_hyper_parameter_errors() -> None:
    with pytest.raises(ValueError, match=r"margin must be > 0, got -0.1"):
        make_loss("triplet(margin=-0.1)", dim=DIM, n_classes=N_CLASSES)
    with pytest.raises(ValueError, match=r"temperature must be > 0, got 0"):
        make_loss("supcon(temperature=0)", dim=DIM, n_classes=N_CLASSES)
    with pytest.raises(ValueError, match=r"miner must be one of all, all_pairs, batch_hard"):
        make_loss("triplet(miner=hardest)", dim=DIM, n_classes=N_CLASSES)
    with pytest.raises(ValueError, match=r"dims must be <= dim=32"):
        make_loss("matryoshka(dims=8-64)", dim=DIM, n_classes=N_CLASSES)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\), got 7 at index 0"):
        build("ebv")(torch.randn(2, DIM), torch.tensor([7, 0]))
    with pytest.raises(ValueError, match=r"views must have n_views >= 2, got 1"):
        build("mv_dhel")(torch.randn(4, 1, DIM))
    with pytest.raises(ValueError, match=r"a and b must have the same shape"):
        build("geodesic_mixup")(torch.randn(4, DIM), torch.randn(3, DIM))
    with pytest.raises(TypeError, match=r"labels must be an integer tensor of class ids"):
        build("supcon")(torch.randn(4, DIM), torch.tensor([0.0, 1.0, 0.0, 1.0]))
