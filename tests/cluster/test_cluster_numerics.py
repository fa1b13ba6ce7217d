"""Metrics, MCR², the DEPICT target and the Sinkhorn projection against naive references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from embedlab.cluster import depict_target, doubly_stochastic
from embedlab.evaluate import cluster_accuracy, cluster_scores
from embedlab.losses import make_loss


def naive_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Best accuracy over every injective map of clusters to classes (brute force)."""
    clusters, classes = sorted(set(pred)), sorted(set(true))
    best = 0
    slots = classes + [None] * max(0, len(clusters) - len(classes))
    for perm in itertools.permutations(slots, len(clusters)):
        mapping = dict(zip(clusters, perm, strict=True))
        best = max(best, sum(mapping[p] == t for p, t in zip(pred, true, strict=True)))
    return best / len(true)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_sklearn_and_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 4, size=60)
    pred = np.where(rng.random(60) < 0.7, true, rng.integers(0, 5, size=60)) + 10
    scores = cluster_scores(true, pred)
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(true, pred))
    assert scores["ari"] == pytest.approx(adjusted_rand_score(true, pred))
    assert scores["acc"] == pytest.approx(naive_accuracy(true, pred))
    assert cluster_accuracy(torch.from_numpy(true), torch.from_numpy(pred)) == scores["acc"]


def test_accuracy_edge_cases_and_errors() -> None:
    assert cluster_accuracy([0, 0, 1, 1], [1, 1, 0, 0]) == 1.0
    assert cluster_accuracy([0, 1, 2, 3], [0, 0, 0, 0]) == 0.25  # fewer clusters than classes
    with pytest.raises(ValueError, match=r"must have the same number of rows .* got 3 and 2"):
        cluster_accuracy([0, 1, 1], [0, 1])
    with pytest.raises(TypeError, match=r"labels_pred must hold integer class labels"):
        cluster_scores([0, 1], [0.5, 1.0])
    with pytest.raises(ValueError, match=r"labels_true must not be empty"):
        cluster_scores([], [])


def naive_mcr2(z: np.ndarray, labels: np.ndarray, eps: float) -> float:
    """``R_c - R`` in float64, one log-determinant per class in a loop."""
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n, d = z.shape
    rate = 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * eps**2) * z.T @ z)[1]
    rc = 0.0
    for c in np.unique(labels):
        zc = z[labels == c]
        nc = zc.shape[0]
        rc += nc / (2 * n) * np.linalg.slogdet(np.eye(d) + d / (nc * eps**2) * zc.T @ zc)[1]
    return rc - rate


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("eps", [0.5, 0.1])
def test_mcr2_matches_a_float64_loop(seed: int, eps: float) -> None:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(24, 6, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 3, (24,), generator=gen)
    loss = make_loss(f"mcr2(eps={eps})")  # no dim / n_classes needed
    got = float(loss(z, labels))
    assert got == pytest.approx(naive_mcr2(z.numpy(), labels.numpy(), eps), rel=1e-10)
    got32 = float(loss(z.float(), labels))
    assert got32 == pytest.approx(got, rel=1e-4, abs=1e-5)


def test_mcr2_prefers_orthogonal_classes() -> None:
    loss = make_loss("mcr2(eps=0.5)")
    labels = torch.tensor([0, 0, 1, 1])
    ortho = torch.tensor([[1.0, 0], [1.0, 0.01], [0, 1.0], [0.01, 1.0]])
    mixed = torch.tensor([[1.0, 0], [0, 1.0], [1.0, 0.01], [0.01, 1.0]])
    assert float(loss(ortho, labels)) < float(loss(mixed, labels)) < 0
    with pytest.raises(ValueError, match=r"eps must be > 0, got 0"):
        make_loss("mcr2(eps=0)")
    with pytest.raises(ValueError, match=r"loss 'ebv' needs dim="):
        make_loss("ebv")


def test_depict_targets() -> None:
    p = torch.tensor([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]], dtype=torch.float64)
    f = p.sum(0)
    for target, unnorm in (("sqrt", p / f.sqrt()), ("square", p**2 / f)):
        q = depict_target(p, target=target)
        torch.testing.assert_close(q, unnorm / unnorm.sum(1, keepdim=True))
        torch.testing.assert_close(q.sum(1), torch.ones(3, dtype=torch.float64))
    sharp = depict_target(p, target="square")
    assert bool((sharp.max(1).values >= p.max(1).values).all())  # the code's target sharpens


def test_sinkhorn_is_doubly_stochastic_and_differentiable() -> None:
    c = torch.nn.functional.normalize(torch.randn(12, 3, dtype=torch.float64), dim=1)
    c.requires_grad_(True)
    gam = doubly_stochastic(c @ c.T / 0.2, iters=200)
    ones = torch.ones(12, dtype=torch.float64)
    torch.testing.assert_close(gam.sum(0), ones, atol=1e-6, rtol=0)
    torch.testing.assert_close(gam.sum(1), ones, atol=1e-6, rtol=0)
    torch.testing.assert_close(gam, gam.T)
    (gam * torch.arange(144.0, dtype=torch.float64).reshape(12, 12)).sum().backward()
    assert c.grad is not None and bool(torch.isfinite(c.grad).all())
    low = float(gam.detach().min())
    assert not math.isnan(low) and low >= 0


@pytest.mark.parametrize("shape", [(1, 12, 12), (20,)])
def test_depict_network_dropout_and_init_as_the_reference(shape: tuple[int, ...]) -> None:
    """Dropout on the input and the first layer only (reference dropouts 0.1, 0.1, 0);
    Glorot-uniform weights and zero biases."""
    from embedlab.cluster._depict_net import make_autoencoder

    torch.manual_seed(0)
    net = make_autoencoder(shape, dim=3, filters=4, hidden=8, dropout=0.5)
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            assert m.bias is not None and not m.bias.any()
            fan_in = (
                m.weight[0].numel()
                if not isinstance(m, torch.nn.ConvTranspose2d)
                else (m.weight.shape[1] * m.weight[0, 0].numel())
            )
            fan_out = m.weight.numel() // fan_in
            assert m.weight.abs().max() <= math.sqrt(6 / (fan_in + fan_out)) + 1e-6
    net.train()
    out = net(torch.rand(5, *shape))
    last = net.enc[-1]  # type: ignore[index]
    h = out.hidden[-2]
    want = net.act(last(h))  # type: ignore[operator]
    torch.testing.assert_close(out.hidden[-1], want)  # no dropout after the last layer
    assert (out.hidden[1] == 0).float().mean() > 0.3  # dropout 0.5 after the first layer
