"""Starbucks' KL term (sub-model vs full model) against a naive float64 loop."""

from __future__ import annotations

import math

import pytest
import torch

from embedlab.losses import StarbucksLoss, SupConLoss, make_loss


def _softmax(v: list[float]) -> list[float]:
    m = max(v)
    e = [math.exp(a - m) for a in v]
    s = sum(e)
    return [a / s for a in e]


def _kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b) / math.sqrt(float(a @ a) * float(b @ b))


def naive_kl_embeddings(h: torch.Tensor, full: torch.Tensor, d: int) -> float:
    rows = [
        _kl(_softmax(full[i, :d].tolist()), _softmax(h[i, :d].tolist())) for i in range(h.shape[0])
    ]
    return sum(rows) / len(rows)


def naive_kl_scores(h: torch.Tensor, full: torch.Tensor, d: int, t: float) -> float:
    n = h.shape[0]
    rows = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        p = _softmax([_cos(full[i], full[j]) / t for j in others])
        q = _softmax([_cos(h[i, :d], h[j, :d]) / t for j in others])
        rows.append(_kl(p, q))
    return sum(rows) / n


def _layers(seed: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    layers = [torch.randn(10, 16, generator=g, dtype=torch.float64) for _ in range(3)]
    return layers, torch.arange(10) % 3


@pytest.mark.parametrize("seed", [0, 1])
def test_kl_embeddings_matches_naive(seed: int) -> None:
    layers, y = _layers(seed)
    pairs = ((1, 4), (2, 16))
    plain = StarbucksLoss(SupConLoss(), pairs=pairs)(layers, y)
    ours = StarbucksLoss(SupConLoss(), pairs=pairs, kl_weight=2.0, kl_temperature=0.3)(layers, y)
    # the last-layer pair gets no KL term; the mean over pairs divides by 2
    want = float(plain) + 2.0 * 0.3 * naive_kl_embeddings(layers[1], layers[2], 4) / 2
    assert float(ours) == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_kl_scores_matches_naive(seed: int) -> None:
    layers, y = _layers(seed)
    pairs = ((0, 8), (1, 4), (2, 16))
    plain = StarbucksLoss(SupConLoss(), pairs=pairs)(layers, y)
    loss = StarbucksLoss(
        SupConLoss(), pairs=pairs, kl_weight=0.5, kl_temperature=0.2, kl_on="scores"
    )
    kl = naive_kl_scores(layers[0], layers[2], 8, 0.2) + naive_kl_scores(
        layers[1], layers[2], 4, 0.2
    )
    want = float(plain) + 0.5 * kl / 3
    assert float(loss(layers, y)) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_default_has_no_kl_and_kl_is_zero_for_identical_layers() -> None:
    layers, y = _layers(3)
    assert make_loss("starbucks", dim=16).kl_weight == 0.0
    same = [layers[2], layers[2], layers[2]]
    plain = StarbucksLoss(SupConLoss(), pairs=((1, 16), (2, 16)))(same, y)
    with_kl = make_loss("starbucks(kl_weight=1.0)", dim=16, pairs=((1, 16), (2, 16)))
    assert float(with_kl(same, y)) == pytest.approx(float(plain), abs=1e-9)


def test_kl_gradient_reaches_sub_layer() -> None:
    layers, y = _layers(4)
    h = layers[1].clone().requires_grad_(True)
    loss = StarbucksLoss(SupConLoss(), pairs=((1, 4), (2, 16)), kl_weight=1.0)
    base = StarbucksLoss(SupConLoss(), pairs=((1, 4), (2, 16)))
    g_kl = torch.autograd.grad(loss([layers[0], h, layers[2]], y), h)[0]
    g_plain = torch.autograd.grad(base([layers[0], h, layers[2]], y), h)[0]
    assert not torch.allclose(g_kl, g_plain)


def test_kl_bad_options() -> None:
    with pytest.raises(ValueError, match="kl_weight"):
        StarbucksLoss(SupConLoss(), pairs=((1, 4),), kl_weight=-1.0)
    with pytest.raises(ValueError, match="kl_on"):
        StarbucksLoss(SupConLoss(), pairs=((1, 4),), kl_on="logits")
    with pytest.raises(ValueError, match="kl_temperature"):
        StarbucksLoss(SupConLoss(), pairs=((1, 4),), kl_temperature=0.0)
