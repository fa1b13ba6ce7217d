"""Task vectors, task arithmetic and aTLAS (learned blockwise coefficients)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from embedlab.training.task_vectors import (
    AnisotropicMerge,
    atlas,
    few_shot_subset,
    task_arithmetic,
    task_vector,
)


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def _finetuned(base: nn.Module, seed: int) -> nn.Module:
    ft = copy.deepcopy(base)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in ft.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return ft


def test_task_vector_is_difference_per_tensor() -> None:
    base = _net(0)
    ft = _finetuned(base, 1)
    tau = task_vector(base, ft)
    assert set(tau) == set(base.state_dict())
    for k, v in base.state_dict().items():
        torch.testing.assert_close(tau[k], ft.state_dict()[k] - v)


def test_task_arithmetic_naive() -> None:
    base = _net(0)
    fts = [_finetuned(base, s) for s in (1, 2)]
    vecs = [task_vector(base, f) for f in fts]
    merged = task_arithmetic(base, vecs, lam=0.4)
    for k, v in base.state_dict().items():
        want = v.double() + 0.4 * sum(f.state_dict()[k].double() - v.double() for f in fts)
        torch.testing.assert_close(merged[k].double(), want, rtol=1e-6, atol=1e-6)
    # fine-tuned modules are accepted in place of vectors
    merged2 = task_arithmetic(base, fts, lam=0.4)
    for k in merged:
        torch.testing.assert_close(merged[k], merged2[k])


def test_atlas_one_task_coefficients_one_equals_task_arithmetic() -> None:
    base = _net(0)
    ft = _finetuned(base, 3)
    vec = task_vector(base, ft)
    plain = task_arithmetic(base, [vec], lam=1.0)
    x = torch.randn(10, 6)
    y = torch.arange(10) % 3
    res = atlas(base, [vec], (x, y), shots=None, steps=0, init=1.0)
    assert res.coefficients.shape == (1, 4)
    for k in plain:
        torch.testing.assert_close(res.state_dict[k], plain[k])
    # ... and one task at lambda 1 is the fine-tuned model itself
    merge = AnisotropicMerge(base, [vec], init=1.0)
    torch.testing.assert_close(merge(x), ft(x), rtol=1e-5, atol=1e-5)


def test_merge_matches_naive_blockwise_combination() -> None:
    base = _net(0)
    fts = [_finetuned(base, s) for s in (1, 2, 3)]
    merge = AnisotropicMerge(base, fts)
    coef = torch.randn(3, 4, dtype=torch.float64)
    with torch.no_grad():
        merge.coef.copy_(coef)
    state = merge.merged_state_dict()
    b = base.state_dict()
    for j, name in enumerate(merge.block_names):
        want = b[name].double().clone()
        for t, f in enumerate(fts):
            want += float(coef[t, j]) * (f.state_dict()[name].double() - b[name].double())
        torch.testing.assert_close(state[name].double(), want, rtol=1e-5, atol=1e-6)


def test_coefficients_get_gradients_and_training_lowers_loss() -> None:
    base = _net(0)
    fts = [_finetuned(base, s) for s in (1, 2)]
    merge = AnisotropicMerge(base, fts)
    x = torch.randn(12, 6)
    y = torch.arange(12) % 3
    F.cross_entropy(merge(x), y).backward()
    assert merge.coef.grad is not None
    assert merge.coef.grad.shape == (2, 4)
    assert float(merge.coef.grad.abs().sum()) > 0
    assert all(p.grad is None for p in merge.module.parameters())
    res = atlas(base, fts, (x, y), shots=None, steps=60, lr=0.1)
    assert res.losses[-1] < res.losses[0]
    # the returned module computes with the merged weights
    merge2 = AnisotropicMerge(base, fts)
    with torch.no_grad():
        merge2.coef.copy_(res.coefficients)
    torch.testing.assert_close(res.model(x), merge2(x))


def test_isotropic_variant_has_one_coefficient_per_task() -> None:
    base = _net(0)
    res = atlas(
        base,
        [_finetuned(base, 1)],
        (torch.randn(6, 6), torch.arange(6) % 3),
        shots=None,
        steps=2,
        blockwise=False,
    )
    assert res.coefficients.shape == (1, 1)


def test_shape_mismatch_names_parameter() -> None:
    base = _net(0)
    other = nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 3))
    with pytest.raises(ValueError, match=r"0\.weight"):
        task_vector(base, other)
    with pytest.raises(ValueError, match="missing"):
        task_vector(base, nn.Linear(6, 3))
    bad = task_vector(base, _finetuned(base, 1))
    bad["2.bias"] = torch.zeros(5)
    with pytest.raises(ValueError, match=r"2\.bias"):
        task_arithmetic(base, [bad])
    with pytest.raises(ValueError, match=r"2\.bias"):
        AnisotropicMerge(base, [bad])
    with pytest.raises(ValueError, match="vectors"):
        atlas(base, [], (torch.randn(3, 6), torch.arange(3)))
    with pytest.raises(ValueError, match="lam"):
        task_arithmetic(base, [_finetuned(base, 1)], lam=float("nan"))
    with pytest.raises(ValueError, match="shots"):
        atlas(base, [_finetuned(base, 1)], (torch.randn(3, 6), torch.arange(3)), shots=0)


def test_few_shot_subset_per_class() -> None:
    x = torch.arange(30).float().unsqueeze(1)
    y = torch.arange(30) % 3
    xs, ys = few_shot_subset(x, y, 4, seed=1)
    assert torch.bincount(ys).tolist() == [4, 4, 4]
    assert torch.equal(ys, xs.squeeze(1).long() % 3)
