"""The completion loss and InfoNCE against float64 loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from embedlab.bundle import completion_loss, info_nce, pad_bundles


def _naive_completion(logits: np.ndarray, given: list[list[int]], rest: list[list[int]]) -> float:
    total = 0.0
    for row, g, r in zip(logits, given, rest, strict=True):
        allowed = [j for j in range(len(row)) if j not in g]
        log_z = math.log(sum(math.exp(row[j]) for j in allowed))
        total += -sum(row[j] - log_z for j in r) / len(r)
    return total / len(given)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_completion_loss_matches_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_items = 9
    given, rest = [], []
    for _ in range(4):
        perm = rng.permutation(n_items)[: rng.integers(2, 7)]
        k = max(1, len(perm) // 2)
        given.append(perm[:k].tolist())
        rest.append(perm[k:].tolist())
    logits = rng.normal(size=(4, n_items))
    got = completion_loss(
        torch.tensor(logits, dtype=torch.float64), pad_bundles(given), pad_bundles(rest)
    )
    assert float(got) == pytest.approx(_naive_completion(logits, given, rest), rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_info_nce_matches_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    t = 0.3
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    want = 0.0
    for i in range(5):
        sims = [float(an[i] @ bn[j]) / t for j in range(5)]
        want += -(sims[i] - math.log(sum(math.exp(s) for s in sims)))
    got = info_nce(torch.tensor(a), torch.tensor(b), t)
    assert float(got) == pytest.approx(want / 5, rel=1e-10)


def test_bad_inputs_name_the_parameter() -> None:
    z = torch.zeros(2, 5)
    ok = torch.tensor([[0], [1]])
    with pytest.raises(ValueError, match="given must be"):
        completion_loss(z, torch.tensor([[0]]), ok)
    with pytest.raises(ValueError, match="targets ids must be in"):
        completion_loss(z, ok, torch.tensor([[7], [2]]))
    with pytest.raises(ValueError, match="targets must hold at least one item"):
        completion_loss(z, ok, torch.tensor([[2], [-1]]))
    with pytest.raises(ValueError, match="targets must not repeat a given item"):
        completion_loss(z, ok, torch.tensor([[0], [2]]))
    with pytest.raises(ValueError, match="logits must be"):
        completion_loss(torch.zeros(5), ok, ok)
    with pytest.raises(ValueError, match="a and b must be"):
        info_nce(torch.zeros(3, 2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        info_nce(torch.zeros(3, 2), torch.zeros(3, 2), 0.0)
    with pytest.raises(ValueError, match="bundles must not be empty"):
        pad_bundles([])
