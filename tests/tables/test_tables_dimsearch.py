"""Dimension-search tables: DNIS, AutoSrh (per-group gates) and AutoDim (per-field dims)."""

from __future__ import annotations

import io
from typing import TypeVar

import numpy as np
import pytest
import torch

from embedlab.data import make_ctr
from embedlab.models import make_model
from embedlab.tables import BudgetError, Field
from embedlab.tables._dimsearch import (
    GROUP_HEADER_BYTES,
    GroupedDimTable,
    GroupLayout,
    frequency_groups,
)
from embedlab.tables._phases import PhaseContext
from embedlab.tables.autodim import AutoDimTable, field_bytes
from embedlab.tables.autosrh import AutoSrhTable
from embedlab.tables.dnis import DNISTable
from embedlab.training import CTRTrainer

FIELDS = [Field("user", 957), Field("item", 4082), Field("ctx", 7), Field("city", 233)]
DIM = 16
GROUPED = [DNISTable, AutoSrhTable]


def zipf_ids(n: int = 3000, seed: int = 0) -> np.ndarray:
    """``(n, n_fields)`` ids whose popularity falls with a shuffled rank (not id order)."""
    rng = np.random.default_rng(seed)
    cols = []
    for f in FIELDS:
        p = 1.0 / np.arange(1, f.cardinality + 1)
        cols.append(rng.permutation(f.cardinality)[rng.choice(f.cardinality, n, p=p / p.sum())])
    return np.stack(cols, axis=1)


def context(ids: np.ndarray) -> PhaseContext:
    data = make_ctr(len(ids), [f.cardinality for f in FIELDS], seed=0)
    train = type(data)(ids=ids, labels=data.labels, fields=tuple(FIELDS))
    return PhaseContext(
        train=train, valid=None, evaluate=lambda: 0.5, steps_per_epoch=10, max_epochs=2, seed=0
    )


def every_id() -> torch.Tensor:
    """``(max_card, n_fields)``: every id of every field at least once."""
    n = max(f.cardinality for f in FIELDS)
    return torch.stack([torch.arange(n) % f.cardinality for f in FIELDS], dim=1)


def searched(cls: type[GroupedDimTable], compression: float, seed: int = 0) -> GroupedDimTable:
    """A table after start_phase / end_phase("search") with random gates and weights."""
    table = cls(FIELDS, DIM, compression=compression, seed=seed)
    ctx = context(zipf_ids(seed=seed))
    table.start_phase("search", ctx)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        alpha = torch.rand(table.gate_raw.shape, generator=gen) * 2 - 0.5
        table.gate_raw.copy_(alpha / table.gate_lr_mult)
        table.weight.add_(torch.randn(table.weight.shape, generator=gen) * 0.01)
    table.end_phase("search", ctx)
    return table


T = TypeVar("T", bound=torch.nn.Module)


def reloaded(table: torch.nn.Module, fresh: T) -> T:
    """``fresh`` after loading ``table``'s state dict through a serialised buffer."""
    buf = io.BytesIO()
    torch.save(table.state_dict(), buf)
    buf.seek(0)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    return fresh


def reference_lookup(arrays: dict[str, np.ndarray], ids: np.ndarray) -> np.ndarray:
    """Lookup in the exported groups: zeros unless a stored group holds the id."""
    out = np.zeros((*ids.shape, DIM), dtype=np.float32)
    for key, header in arrays.items():
        if not key.endswith(".header"):
            continue
        name = key.removesuffix(".header")
        field, n_rows, _ = header.tolist()
        col = ids[:, field]
        if f"{name}.bitmap" in arrays:  # presence bits, least significant first
            bits = np.unpackbits(arrays[f"{name}.bitmap"], bitorder="little")
            keys = np.flatnonzero(bits)
        else:
            keys = arrays.get(f"{name}.ids", np.arange(n_rows))  # whole field: row = id
        row = np.minimum(np.searchsorted(keys, col), n_rows - 1)
        hit = keys[row] == col
        out[np.flatnonzero(hit)[:, None], field, arrays[f"{name}.dims"]] = arrays[f"{name}.weight"][
            row[hit]
        ]
    return out


# --- frequency groups and layout -------------------------------------------------------
def test_frequency_groups_put_frequent_ids_first() -> None:
    counts = np.array([5, 100, 0, 7, 50, 1, 1, 1])
    groups = frequency_groups(counts, 3)
    assert set(groups.tolist()) == {0, 1, 2}
    assert groups[1] == 0  # the most frequent id leads
    order = np.argsort(-counts, kind="stable")
    assert np.all(np.diff(groups[order]) >= 0)  # groups follow the frequency ranking
    assert groups[2] == 2  # an unseen id lands in the tail group


def test_frequency_groups_uniform_and_degenerate() -> None:
    assert frequency_groups(np.ones(8, dtype=np.int64), 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert frequency_groups(np.zeros(6, dtype=np.int64), 2).tolist() == [0, 0, 0, 1, 1, 1]
    # one id holds almost all the mass: every group still gets an id
    assert sorted(set(frequency_groups(np.array([1000, 1, 1, 1, 1]), 4).tolist())) == [0, 1, 2, 3]
    assert frequency_groups(np.array([3, 1]), 5).tolist() == [0, 1]  # at most card groups


def test_layout_bytes_and_greedy_selection() -> None:
    # field 0 (card 300): groups of 100 and 200 ids; field 1 (card 5): one whole-field group
    group_of = np.array([0] * 100 + [1] * 200 + [2] * 5)
    layout = GroupLayout.of(group_of, np.array([0, 0, 1]), [300, 5], dim=4)
    assert layout.key_bytes.tolist() == [2, 2, 0]  # uint16 ids; none for a whole field
    # a bitmap over 300 ids (38 bytes) + one int32 rank beats 200 or 400 bytes of ids
    assert layout.bitmap.tolist() == [True, True, False]
    assert layout.member_bytes.tolist() == [42, 42, 0]
    kept = np.array([2, 0, 1])
    want = (100 * 2 * 4 + 2 + 42 + GROUP_HEADER_BYTES) + (5 * 4 + 1 + GROUP_HEADER_BYTES)
    assert layout.bytes(kept) == want
    importance = np.array([[4.0, 3.0, 0.0, 0.0], [9.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    budget = 1054
    keep = layout.select(importance, budget)
    # group 1's dim (score 9) takes 801 + 54 bytes; group 0's dims (401 + 54) no longer
    # fit and are skipped; group 2's two dims (21 + 12, then 21) still do
    assert keep.sum(axis=1).tolist() == [0, 1, 2]
    assert keep[1, 0] and keep[2, :2].all()
    assert layout.bytes(keep.sum(axis=1)) == 909
    assert not keep[:, 2:].any()  # zero importance is never kept


def test_layout_keeps_small_id_lists() -> None:
    # 3 ids of 4000 (uint16): 6 bytes of ids beat a 500 + 32 byte bitmap
    group_of = np.array([0] * 3 + [1] * 3997)
    layout = GroupLayout.of(group_of, np.array([0, 0]), [4000], dim=4)
    assert layout.bitmap.tolist() == [False, True]
    assert layout.member_bytes.tolist() == [6, 500 + 4 * 8]


# --- DNIS / AutoSrh ---------------------------------------------------------------------
@pytest.mark.parametrize("cls", GROUPED)
def test_gate_scales_the_output(cls: type[GroupedDimTable]) -> None:
    table = cls(FIELDS, DIM, compression=10)
    ids = every_id()
    rows = ids + table.offsets
    before = table(ids).detach()
    torch.testing.assert_close(before, table.weight[rows].detach(), rtol=0, atol=0)  # gate 1
    g = int(table.group_of[rows[5, 1]])
    with torch.no_grad():
        table.gate_raw[g, 3] = 2.5 / table.gate_lr_mult
        table.gate_raw[g, 7] = 0.0
    after = table(ids).detach()
    in_group = table.group_of[rows] == g  # (batch, n_fields)
    torch.testing.assert_close(after[..., 3][in_group], 2.5 * before[..., 3][in_group])
    assert torch.all(after[..., 7][in_group] == 0)
    assert torch.equal(after[~in_group], before[~in_group])
    assert torch.equal(after[..., [0, 1, 2, 4, 5, 6]], before[..., [0, 1, 2, 4, 5, 6]])


@pytest.mark.parametrize("cls", GROUPED)
def test_start_phase_groups_ids_by_training_frequency(cls: type[GroupedDimTable]) -> None:
    table = cls(FIELDS, DIM, compression=10, n_groups=4)
    ids = zipf_ids()
    table.start_phase("search", context(ids))
    for f, field in enumerate(FIELDS):
        counts = np.bincount(ids[:, f], minlength=field.cardinality)
        local = table.group_of[table.offsets[f] : table.offsets[f] + field.cardinality].numpy()
        assert local[np.argmax(counts)] == 4 * f  # the most frequent id is in the head group
        if (counts == 0).any():  # unseen ids are all in the tail group
            assert set(local[counts == 0].tolist()) == {4 * f + 3}


@pytest.mark.parametrize("cls", GROUPED)
@pytest.mark.parametrize("compression", [2, 10, 100])
def test_search_fits_budget_and_drops_dims_exactly(
    cls: type[GroupedDimTable], compression: float
) -> None:
    table = cls(FIELDS, DIM, compression=compression)
    ctx = context(zipf_ids())
    table.start_phase("search", ctx)
    with torch.no_grad():
        table.gate_raw.uniform_(-0.05, 0.15, generator=torch.Generator().manual_seed(1))
    ids = every_id()
    before = table(ids).detach()
    assert table.memory_bytes() > table.budget_bytes  # the search form holds everything
    table.end_phase("search", ctx)
    assert 0 < table.memory_bytes() <= table.budget_bytes
    assert table.memory_bytes() > 0.9 * table.budget_bytes  # the greedy fill uses the budget
    exported = table.export_arrays()
    assert sum(a.nbytes for a in exported.values()) == table.memory_bytes()

    out = table(ids).detach()
    keep = table.keep[table.group_of[ids + table.offsets]]  # (batch, n_fields, dim)
    assert torch.all(out[~keep] == 0)  # dropped (group, dim) pairs read exactly zero
    assert torch.equal(out[keep], before[keep])  # kept ones: the gate is folded in exactly
    assert 0 < int(keep.sum()) < keep.numel()
    np.testing.assert_array_equal(reference_lookup(exported, ids.numpy()), out.numpy())
    assert float(table.regularization()) == 0.0
    assert table.describe()["searched"] is True


@pytest.mark.parametrize("cls", GROUPED)
def test_structure_is_fixed_after_search(cls: type[GroupedDimTable]) -> None:
    table = searched(cls, 10)
    ids = every_id()
    out = table(ids)
    (out * torch.randn_like(out)).sum().backward()
    assert table.weight.grad is not None
    dropped = ~table.keep[table.group_of]  # (n_ids, dim)
    assert torch.all(table.weight.grad[dropped] == 0)
    assert not table.gate_raw.requires_grad  # folded and frozen
    # the structure travels in the state dict (persistent buffers)
    fresh = reloaded(table, cls(FIELDS, DIM, compression=10, seed=5))
    assert fresh.is_searched and fresh.memory_bytes() == table.memory_bytes()
    assert torch.equal(fresh(ids), table(ids))


def test_dnis_and_autosrh_rank_pairs_differently() -> None:
    dnis, srh = DNISTable(FIELDS, DIM, compression=10), AutoSrhTable(FIELDS, DIM, compression=10)
    srh.load_state_dict(dnis.state_dict())
    with torch.no_grad():
        for t in (dnis, srh):
            t.gate_raw.fill_(0.05)
            t.gate_raw[0, 0] = 0.1  # large gate ...
            t.weight[t.group_of == 0, 0] = 1e-4  # ... on a tiny block
            t.gate_raw[1, 0] = 0.06
            t.weight[t.group_of == 1, 0] = 1.0
    d, s = dnis._importance(), srh._importance()
    np.testing.assert_allclose(d, dnis.gate().detach().abs().numpy() * dnis.group_mean_abs())
    assert d[1, 0] > d[0, 0]  # DNIS: output magnitude |alpha| * mean|v| (uniform counts)
    assert s[0, 0] > s[1, 0]  # AutoSrh: saliency alone
    assert s[0, 0] == 1.0  # normalised to the field's largest saliency
    raw = AutoSrhTable(FIELDS, DIM, compression=10, normalize=False)
    with torch.no_grad():
        raw.gate_raw.fill_(0.025)
    np.testing.assert_allclose(raw._importance(), 0.25)


@pytest.mark.parametrize("size_weighted", [False, True])
def test_autosrh_l1_penalty_is_differentiable(size_weighted: bool) -> None:
    table = AutoSrhTable(FIELDS, DIM, compression=10, l1=1e-3, size_weighted=size_weighted)
    assert float(table.regularization()) == 0.0  # the penalty belongs to the search phase
    table.start_phase("search", context(zipf_ids()))
    with torch.no_grad():
        table.gate_raw.uniform_(-0.1, 0.1, generator=torch.Generator().manual_seed(0))
    s = table.gate().detach()
    rows = table.group_rows.unsqueeze(1)
    w = rows / rows.mean() if size_weighted else torch.ones_like(rows)
    reg = table.regularization()
    assert float(reg.detach()) == pytest.approx(1e-3 * float((w * s.abs()).sum()), rel=1e-5)
    assert float(reg.detach()) > 0
    reg.backward()
    assert table.gate_raw.grad is not None
    want = 1e-3 * table.gate_lr_mult * w * torch.sign(s)  # d/d raw of l1 * w * |mult * raw|
    torch.testing.assert_close(table.gate_raw.grad, want.expand_as(s))
    assert float(AutoSrhTable(FIELDS, DIM, compression=10, l1=0.0).regularization()) == 0.0
    assert float(DNISTable(FIELDS, DIM, compression=10).regularization()) == 0.0
    assert float(searched(AutoSrhTable, 10).regularization()) == 0.0


@pytest.mark.parametrize("cls", GROUPED)
def test_grouped_budget_and_arguments(cls: type[GroupedDimTable]) -> None:
    for c in (2, 10, 100, 1000):
        assert (
            cls(FIELDS, DIM, compression=c).budget_bytes
            == sum(f.cardinality for f in FIELDS) * DIM * 4 // c
        )
    name = cls.name
    with pytest.raises(
        BudgetError,
        match=rf"{name} cannot reach compression 1e\+06 .* needs at least 18 bytes, budget is 0 "
        rf"\({name} reaches compression at most 18769.8x here\)",
    ):
        cls(FIELDS, DIM, compression=1e6)
    with pytest.raises(ValueError, match="n_groups must be >= 1, got 0"):
        cls(FIELDS, DIM, n_groups=0)
    with pytest.raises(ValueError, match="phase must be one of retrain, search; got 'train'"):
        cls(FIELDS, DIM).start_phase("train", context(zipf_ids(10)))
    with pytest.raises(RuntimeError, match="no deployable form before end_phase"):
        cls(FIELDS, DIM).export_arrays()


def test_autosrh_rejects_bad_l1() -> None:
    with pytest.raises(ValueError, match="l1 must be >= 0, got -1"):
        AutoSrhTable(FIELDS, DIM, l1=-1)
    with pytest.raises(TypeError, match="normalize must be True or False, got 1"):
        AutoSrhTable(FIELDS, DIM, normalize=1)  # type: ignore[arg-type]


# --- AutoDim ------------------------------------------------------------------------------
def test_autodim_budget_and_candidates() -> None:
    table = AutoDimTable(FIELDS, DIM, compression=10)
    assert table.candidates == (1, 2, 4, 8, 16)
    assert AutoDimTable(FIELDS, 6, candidates="1-2-4-8-16").candidates == (1, 2, 4)
    assert AutoDimTable(FIELDS, DIM, compression=2).budget_bytes == table.full_bytes // 2
    smallest = sum(field_bytes(f.cardinality, 1, DIM) for f in FIELDS)
    assert smallest == 4 * ((957 + 16) + (4082 + 16) + (7 + 16) + (233 + 16))  # 15.81x
    with pytest.raises(
        BudgetError,
        match=rf"autodim cannot reach compression 100 for these fields: needs at least "
        rf"{smallest} bytes, budget is 3378 \(autodim reaches compression at most 15.8x here\)",
    ):
        AutoDimTable(FIELDS, DIM, compression=100)
    with pytest.raises(ValueError, match=r"candidates must hold at least one dim <= dim=4"):
        AutoDimTable(FIELDS, 4, candidates=(8, 16))
    with pytest.raises(ValueError, match="tau_end must be <= tau_start=1, got 2"):
        AutoDimTable(FIELDS, DIM, tau_end=2.0)


def test_field_bytes_folds_the_projection_when_smaller() -> None:
    assert field_bytes(1000, 4, 16) == 4 * (1000 * 4 + 4 * 16)
    assert field_bytes(7, 8, 16) == 4 * 7 * 16  # a (7, 16) table beats 7x8 + 8x16
    assert field_bytes(7, 16, 16) == 4 * 7 * 16


def test_autodim_gumbel_mixing_and_annealing() -> None:
    table = AutoDimTable(FIELDS, DIM, compression=2, anneal_steps=10, tau_end=0.1)
    w = table.mixing_weights()
    torch.testing.assert_close(w.sum(dim=1), torch.ones(len(FIELDS)))
    assert not torch.allclose(w, torch.full_like(w, 0.2))  # Gumbel noise while training
    table.eval()
    torch.testing.assert_close(table.mixing_weights(), torch.full_like(w, 0.2))
    table.train()
    assert table.temperature() == 1.0
    for step in range(1, 6):
        table.on_step(step)
    assert table.temperature() == pytest.approx(0.1**0.5)
    first = table.mixing_weights()
    table.on_step(6)
    assert not torch.equal(first, table.mixing_weights())  # fresh noise every step
    for step in range(7, 20):
        table.on_step(step)
    assert table.temperature() == pytest.approx(0.1)


def test_autodim_mixes_candidates_by_their_weights() -> None:
    table = AutoDimTable(FIELDS, DIM, compression=2).eval()
    with torch.no_grad():
        table.arch.copy_(torch.tensor([[0.0, 0.0, 50.0, 0.0, 0.0]]).repeat(len(FIELDS), 1))
    ids = every_id()[:50]
    rows = ids + table.offsets
    cols = table.columns(2)
    assert cols == slice(1 + 2, 1 + 2 + 4)
    only = torch.einsum("bfc,fcd->bfd", table.weight[rows][..., cols], table.projection[:, cols])
    torch.testing.assert_close(table(ids), only)  # softmax(a / tau) is one-hot on dim 4


def test_autodim_selection_is_argmax_then_greedy_downgrades() -> None:
    table = AutoDimTable(FIELDS, DIM, compression=2)
    cost = table._bytes_per_candidate()
    weights = np.array(
        [
            [0.0, 0.0, 0.1, 0.2, 0.7],  # user: wants 16
            [0.0, 0.1, 0.2, 0.3, 0.4],  # item: wants 16 but not by much
            [0.0, 0.0, 0.0, 0.0, 1.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
        ]
    )
    roomy = int(cost[:, 4].sum())
    assert table.select(weights, roomy).tolist() == [4, 4, 4, 4]
    budget = table.budget_bytes
    choice = table.select(weights, budget)
    assert cost[np.arange(4), choice].sum() <= budget
    assert choice[1] < 4  # the big field with flat weights shrinks first
    assert choice[0] >= choice[1]
    tight = int(cost[:, 0].sum())
    assert table.select(weights, tight).tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("compression", [2, 10])
def test_autodim_search_keeps_one_candidate_per_field(compression: float) -> None:
    table = AutoDimTable(FIELDS, DIM, compression=compression)
    with torch.no_grad():
        table.arch.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(0))
    ctx = context(zipf_ids(100))
    table.start_phase("search", ctx)
    assert table.memory_bytes() > table.budget_bytes
    table.end_phase("search", ctx)
    dims = table.dims
    assert dims is not None and len(dims) == len(FIELDS)
    assert set(dims) <= set(table.candidates)
    want = sum(field_bytes(f.cardinality, d, DIM) for f, d in zip(FIELDS, dims, strict=True))
    assert table.memory_bytes() == want <= table.budget_bytes
    exported = table.export_arrays()
    assert sum(a.nbytes for a in exported.values()) == want

    ids = every_id()
    out = table(ids).detach()
    ref = np.stack(
        [
            (exported[f"field{f}.table"] @ exported.get(f"field{f}.projection", np.eye(DIM)))[
                ids[:, f].numpy()
            ]
            for f in range(len(FIELDS))
        ],
        axis=1,
    )
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-7)
    with torch.no_grad():  # the other candidates no longer matter
        for k in set(range(len(table.candidates))) - {table.candidates.index(d) for d in dims}:
            table.weight[:, table.columns(k)] *= 3.0
    assert torch.equal(table(ids).detach(), out)
    out = table(ids)
    (out * torch.randn_like(out)).sum().backward()
    assert table.weight.grad is not None and table.arch.grad is None  # arch is frozen
    for f, d in enumerate(dims):
        grad = table.weight.grad[table.offsets[f] : table.offsets[f] + FIELDS[f].cardinality]
        chosen = table.columns(table.candidates.index(d))
        assert grad[:, chosen].abs().sum() > 0
        grad[:, chosen] = 0
        assert torch.all(grad == 0)  # only the chosen block of each field learns
    fresh = reloaded(table, AutoDimTable(FIELDS, DIM, compression=compression, seed=9))
    assert fresh.dims == dims and torch.equal(fresh(ids), table(ids))


# --- end to end -------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [DNISTable, AutoSrhTable, AutoDimTable])
def test_two_phase_fit_end_to_end(cls: type[DNISTable | AutoSrhTable | AutoDimTable]) -> None:
    data = make_ctr(4000, (50, 20, 5), seed=0).split(seed=0)
    table = cls(data.fields, 8, compression=4, seed=0)
    model = make_model("deepfm", table, hidden=(32,))
    result = CTRTrainer(epochs=2, progress=False, batch_size=256).fit(model, data.train, data.valid)
    assert [p["name"] for p in result.phases] == ["search", "retrain"]
    assert table.is_searched
    assert table.memory_bytes() <= table.budget_bytes
    assert table(torch.from_numpy(data.test.ids)).shape == (len(data.test), 3, 8)
    auc = CTRTrainer(progress=False).evaluate(model, data.test)["auc"]
    assert auc > 0.6, auc
