"""ContrastiveLoss with its defaults equals pytorch-metric-learning's ContrastiveLoss.

PML reduces each term (positive pairs, negative pairs) over its non-zero pairs
(``AvgNonZeroReducer``); a plain mean over all negative pairs weakens the push term.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from embedlab.losses import ContrastiveLoss

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")


def _batch(seed: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(48, 8, generator=gen, dtype=torch.float64).to(dtype)
    y = torch.randint(0, 6, (48,), generator=gen)
    return x, y


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_equals_pml(seed: int, dtype: torch.dtype) -> None:
    x, y = _batch(seed, dtype)
    ours = ContrastiveLoss()(x, y)
    ref = pml_losses.ContrastiveLoss()(x, y)
    rel = 1e-9 if dtype == torch.float64 else 1e-5
    assert float(ours) == pytest.approx(float(ref), rel=rel)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_is_mean_over_nonzero_pairs(seed: int) -> None:
    x, y = _batch(seed, torch.float64)
    u = torch.nn.functional.normalize(x, dim=1)
    pos, neg = [], []
    for i, j in itertools.product(range(len(y)), repeat=2):
        d = math.sqrt(float(((u[i] - u[j]) ** 2).sum()))
        if i != j and y[i] == y[j]:
            pos.append(d)
        elif y[i] != y[j]:
            neg.append(max(0.0, 1.0 - d))
    nonzero = [v for v in neg if v > 0]
    assert 0 < len(nonzero) < len(neg)  # the two reductions differ on this batch
    expected = sum(pos) / len(pos) + sum(nonzero) / len(nonzero)
    assert float(ContrastiveLoss()(x, y)) == pytest.approx(expected, rel=1e-9)
