"""DNIS: the bi-level search (tables/_bilevel.py) and the prune-to-budget step
(tables/_dnis_prune.py, the bitmap-or-ids budget of tables/_dim_groups.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from embedlab.data import CTRDataset, make_ctr
from embedlab.models import make_model
from embedlab.tables import Field
from embedlab.tables._bilevel import ValidationSearch
from embedlab.tables._dim_groups import GroupLayout
from embedlab.tables._dnis_prune import floor_entries, select_with_floor
from embedlab.tables._phases import PhaseContext
from embedlab.tables.dnis import DNISTable
from embedlab.training import CTRTrainer


# --- naive references ---------------------------------------------------------------------
def naive_bytes(
    group_of: np.ndarray, group_field: np.ndarray, cards: list[int], dim: int, keep: np.ndarray
) -> int:
    """Deployable bytes written out group by group from the ids themselves."""
    total = 0
    for g, f in enumerate(group_field.tolist()):
        k = int(keep[g].sum())
        if k == 0:
            continue
        rows = int((group_of == g).sum())
        card = cards[f]
        id_bytes = 1 if card <= 2**8 else 2 if card <= 2**16 else 4
        member = 0
        if rows < card:  # sorted ids, or a bitmap plus one int32 count per 512 ids
            member = min(rows * id_bytes, math.ceil(card / 8) + 4 * math.ceil(card / 512))
        total += rows * k * 4 + k * (1 if dim <= 256 else 2) + member + 12
    return total


def naive_select(
    group_of: np.ndarray,
    group_field: np.ndarray,
    cards: list[int],
    dim: int,
    score: np.ndarray,
    budget: int,
    floor: list[tuple[int, int]],
) -> np.ndarray:
    """Greedy by score that re-counts every byte for each candidate entry."""
    keep = np.zeros(score.shape, dtype=bool)
    for g, d in floor:
        keep[g, d] = True
    order = sorted(np.ndindex(*score.shape), key=lambda gd: (-score[gd], gd[0] * dim + gd[1]))
    for g, d in order:
        if score[g, d] <= 0:
            break
        trial = keep.copy()
        trial[g, d] = True
        if naive_bytes(group_of, group_field, cards, dim, trial) <= budget:
            keep = trial
    return keep


def random_groups(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Global group of every id of 3 fields (one of them over 256 ids), every group non-empty."""
    cards = [int(rng.integers(2, 40)), int(rng.integers(300, 1500)), 5]
    parts, fields, start = [], [], 0
    for f, card in enumerate(cards):
        n = int(rng.integers(1, min(card, 4) + 1))
        local = np.concatenate([np.arange(n), rng.integers(0, n, card - n)])
        parts.append(rng.permutation(local) + start)
        fields += [f] * n
        start += n
    return np.concatenate(parts), np.array(fields), cards


@pytest.mark.parametrize("seed", range(6))
def test_budget_and_selection_match_naive_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    group_of, group_field, cards = random_groups(rng)
    dim = 6
    layout = GroupLayout.of(group_of, group_field, cards, dim)
    for _ in range(5):
        kept = rng.integers(0, dim + 1, len(group_field))
        keep = np.arange(dim) < kept[:, None]
        assert layout.bytes(kept) == naive_bytes(group_of, group_field, cards, dim, keep)
    score = rng.normal(size=(len(group_field), dim))
    full = naive_bytes(group_of, group_field, cards, dim, np.ones_like(score, dtype=bool))
    heads = [int(np.flatnonzero(group_field == f)[0]) for f in range(len(cards))]
    for budget in (40, full // 7, full // 2, full):
        floor = floor_entries(layout, score, heads, budget)
        got = select_with_floor(layout, score, budget, floor)
        want = naive_select(group_of, group_field, cards, dim, score, budget, floor)
        np.testing.assert_array_equal(got, want)
        assert layout.bytes(got.sum(axis=1)) <= budget
        for g, d in floor:
            assert got[g, d]


def test_floor_reserves_the_cheapest_fields_best_dim() -> None:
    # field 0: head group of 2 ids (of 300), field 1: head group of 1 id (of 5)
    group_of = np.array([0] * 2 + [1] * 298 + [2] + [3] * 4)
    layout = GroupLayout.of(group_of, np.array([0, 0, 1, 1]), [300, 5], dim=3)
    score = np.array([[0.0, 1e-9, 0.0], [5.0, 5.0, 5.0], [0.2, 0.1, 0.3], [9.0, 9.0, 9.0]])
    cost = layout.dim_bytes() + layout.fixed_bytes()
    assert cost[0] == 2 * 4 + 1 + 2 * 2 + 12 and cost[2] == 4 + 1 + 1 + 12
    floor = floor_entries(layout, score, [0, 2], budget_bytes=10_000)
    assert floor == [(2, 2), (0, 1)]  # cheapest first, each at its best dim
    assert floor_entries(layout, score, [0, 2], budget_bytes=int(cost[2])) == [(2, 2)]
    # without the floor, field 0's head (score ~0) would keep nothing at this budget
    budget = int(cost[0] + cost[2] + layout.dim_bytes()[3] + layout.fixed_bytes()[3])
    plain = select_with_floor(layout, score, budget)
    floored = select_with_floor(layout, score, budget, floor)
    assert not plain[0].any() and floored[0, 1] and floored[2, 2]
    assert layout.bytes(floored.sum(axis=1)) <= budget
    with pytest.raises(ValueError, match="floor must fit budget_bytes=10"):
        select_with_floor(layout, score, 10, floor)


# --- bi-level search -----------------------------------------------------------------------
def tiny_context(valid_loss: object, n_train: int = 40, n_valid: int = 10) -> PhaseContext:
    train = make_ctr(n_train, [5, 5], seed=0)
    valid = make_ctr(n_valid, [5, 5], seed=1)
    return PhaseContext(
        train=train,
        valid=valid,
        evaluate=lambda: 0.5,
        steps_per_epoch=10,
        max_epochs=1,
        seed=0,
        valid_loss=valid_loss,  # type: ignore[arg-type]
    )


def test_validation_search_steps_on_every_validation_row_once_per_pass() -> None:
    p = nn.Parameter(torch.zeros(3))
    target = torch.tensor([1.0, -2.0, 0.5])
    seen: list[torch.Tensor] = []

    def valid_loss(rows: torch.Tensor) -> torch.Tensor:
        seen.append(rows)
        return (p - target).square().sum()

    search = ValidationSearch([p], tiny_context(valid_loss), lr=0.05)
    assert not p.requires_grad  # the trainer's optimizer never sees it
    assert search.batch_size == 4  # the training batch: 40 rows in 10 steps
    for _ in range(400):
        search.step()
    torch.testing.assert_close(p.detach(), target, atol=2e-2, rtol=0)
    assert not p.requires_grad
    for first in range(0, 12, 3):  # passes of 4 + 4 + 2 rows
        assert sorted(torch.cat(seen[first : first + 3]).tolist()) == list(range(10))


def test_validation_search_needs_a_validation_loss() -> None:
    with pytest.raises(ValueError, match=r"ctx\.valid_loss must be given"):
        ValidationSearch([nn.Parameter(torch.zeros(1))], tiny_context(None), lr=0.1)


def test_dnis_arguments() -> None:
    fields = [Field("a", 5)]
    with pytest.raises(ValueError, match="prune"):
        DNISTable(fields, 4, prune="rows")
    with pytest.raises(ValueError, match="search"):
        DNISTable(fields, 4, search="darts")
    with pytest.raises(ValueError, match="alpha_lr"):
        DNISTable(fields, 4, alpha_lr=0.0)


def signal_and_noise(n: int, seed: int) -> CTRDataset:
    """Clicks driven by field 0 only; field 1 is uniform noise."""
    rng = np.random.default_rng(seed)
    signal, noise = rng.integers(0, 16, n), rng.integers(0, 16, n)
    effect = np.random.default_rng(99).normal(0.0, 2.0, 16)
    labels = (rng.random(n) < 1.0 / (1.0 + np.exp(-effect[signal]))).astype(np.float32)
    fields = (Field("signal", 16), Field("noise", 16))
    return CTRDataset(ids=np.stack([signal, noise], axis=1), labels=labels, fields=fields)


@pytest.mark.parametrize("prune", ["entry", "auto"])
def test_bilevel_search_prunes_the_useless_field_first(prune: str) -> None:
    train, valid = signal_and_noise(4000, 0), signal_and_noise(1000, 1)
    # one whole-field group per field: a dim costs 16 * 4 + 1 bytes (+ 12 for the first);
    # the 512-byte budget holds 7 dims, one of them the noise field's floor
    table = DNISTable(train.fields, 8, compression=2.0, n_groups=1, prune=prune, seed=0)
    model = make_model("lr", table)
    CTRTrainer(epochs=6, batch_size=200, lr=1e-2, patience=None, progress=False).fit(
        model, train, valid
    )
    info = table.describe()
    assert info["search_used"] == "bilevel" and info["alpha_steps"] == 6 * 20
    kept = table.kept_dims().tolist()
    assert kept[0] >= 5 and kept[1] <= 1, kept  # the floor keeps one noise dim at most
    assert table.memory_bytes() <= table.budget_bytes
