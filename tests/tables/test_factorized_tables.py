"""qr, tt and mde against naive references."""

from __future__ import annotations

import math

import pytest
import torch

from embedlab.tables import BudgetError, Field, MixedDimTable, QRTable, TTTable
from embedlab.tables.tt import factor_dim, tt_shape

FIELDS = [Field("user", 957), Field("item", 4082), Field("ctx", 7), Field("city", 233)]
DIM = 16


def all_ids(field: int) -> torch.Tensor:
    """Every id of one field (other columns 0): ``(card, n_fields)``."""
    card = FIELDS[field].cardinality
    ids = torch.zeros(card, len(FIELDS), dtype=torch.int64)
    ids[:, field] = torch.arange(card)
    return ids


# --- qr ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["mult", "add", "concat"])
def test_qr_matches_manual_rows(op: str) -> None:
    table = QRTable(FIELDS, DIM, compression=10, op=op, seed=3)
    assert table.memory_bytes() <= table.budget_bytes
    user = 0
    m = table.remainder_rows[user]
    assert m > 1 and table.quotient_rows[user] == math.ceil(957 / m)
    out = table(all_ids(user))[:, user]
    # user is the first QR field, so its rows start at 0 in both tables
    for x in range(957):
        rem, quo = table.rem_weight[x % m], table.quo_weight[x // m]
        expected = {"mult": rem * quo, "add": rem + quo, "concat": torch.cat([rem, quo])}[op]
        assert torch.equal(out[x], expected)
    # no two ids share a (quotient, remainder) pair, so all embeddings differ
    assert torch.unique(out, dim=0).shape[0] == 957


def test_qr_small_fields_stay_full_and_plan_is_tight() -> None:
    table = QRTable(FIELDS, DIM, compression=10)
    d = table.describe()
    assert d["full_fields"] == ["ctx"]
    ctx = table(all_ids(2))[:, 2]
    assert torch.equal(ctx, table.full_weight)
    # one fewer collision would not fit
    k = table.collisions
    rows = sum(
        min(k - 1, m) + math.ceil(f.cardinality / min(k - 1, m))
        for f, m in zip(FIELDS, table.remainder_rows, strict=True)
        if m
    )
    assert (rows + 7) * DIM * 4 > table.budget_bytes
    assert QRTable(FIELDS, DIM, compression=1).describe()["collisions"] == 1


def test_qr_mult_init_is_not_vanishing() -> None:
    table = QRTable(FIELDS, DIM, compression=10, op="mult")
    std = float(table(all_ids(1))[:, 1].detach().std())
    assert 5e-3 < std < 2e-2  # product of N(0, 0.1) factors: measured 0.0098-0.0102, 3 seeds


def test_qr_bad_kwargs() -> None:
    with pytest.raises(ValueError, match="op must be one of add, concat, mult; got 'foo'"):
        QRTable(FIELDS, DIM, compression=10, op="foo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dim must be even for op='concat', got 15"):
        QRTable(FIELDS, 15, compression=10, op="concat")


def test_qr_budget_error() -> None:
    with pytest.raises(
        BudgetError,
        match=r"qr cannot reach compression 100 for these fields: "
        r"needs at least 14528 bytes, budget is 3378",
    ):
        QRTable(FIELDS, DIM, compression=100)
    # concat halves the width, so it reaches further than mult
    QRTable(FIELDS, DIM, compression=40, op="concat")


# --- tt ---------------------------------------------------------------------------------------
def test_factor_dim() -> None:
    assert factor_dim(16) == (2, 2, 4)
    assert factor_dim(8) == (2, 2, 2)
    assert factor_dim(32) == (4, 2, 4)
    assert factor_dim(7) == (1, 1, 7)
    for dim in range(1, 70):
        d1, d2, d3 = factor_dim(dim)
        assert d1 * d2 * d3 == dim and d2 <= d1 <= d3


@pytest.mark.parametrize("card", [1, 7, 233, 957, 4082, 10**6])
def test_tt_shape_covers_cardinality(card: int) -> None:
    (n1, n2, n3), floats = tt_shape(card, (2, 2, 4), 8)
    assert n1 * n2 * n3 >= card
    assert floats == 8 * n1 * 2 + 64 * n2 * 2 + 8 * n3 * 4


@pytest.mark.parametrize("compression", [10, 100])
def test_tt_rows_match_full_reconstruction(compression: float) -> None:
    table = TTTable(FIELDS, DIM, compression=compression, seed=1)
    assert table.memory_bytes() <= table.budget_bytes
    d1, d2, d3 = table.dims
    for f in (0, 2, 3):
        if table.shapes[f] is None:
            continue
        cores = table.field_tables[f]
        g1, g2, g3 = cores.g1.detach(), cores.g2.detach(), cores.g3.detach()
        n1, n2, n3 = table.shapes[f]  # type: ignore[misc]
        full = torch.zeros(n1, n2, n3, d1, d2, d3)
        for i1 in range(n1):  # naive contraction, one (i1, i2, i3) slice at a time
            for i2 in range(n2):
                for i3 in range(n3):
                    for a in range(d1):
                        left = g1[i1, a] @ g2[i2].reshape(table.rank, d2 * table.rank)
                        left = left.reshape(d2, table.rank)
                        full[i1, i2, i3, a] = left @ g3[i3]  # (d2, d3)
        full = full.reshape(n1 * n2 * n3, DIM)[: FIELDS[f].cardinality]
        out = table(all_ids(f))[:, f]
        torch.testing.assert_close(out, full, rtol=1e-5, atol=1e-7)


def test_tt_rank_is_the_largest_that_fits() -> None:
    table = TTTable(FIELDS, DIM, compression=10)
    floats = sum(n for _, n in table._plan(table.rank + 1))
    assert floats * 4 > table.budget_bytes
    assert table.describe()["rank"] == table.rank > 1
    capped = TTTable(FIELDS, DIM, compression=10, max_rank=3)
    assert capped.rank == 3


def test_tt_init_std_and_full_fallback() -> None:
    table = TTTable(FIELDS, DIM, compression=10)
    assert table.shapes[2] is None  # ctx: the cores would be bigger than its 7 x 16 table
    std = float(table(all_ids(1))[:, 1].detach().std())
    assert 3e-3 < std < 3e-2  # target init_std 1e-2: measured 0.0094-0.0097 over 3 seeds


def test_tt_bad_kwargs_and_budget() -> None:
    with pytest.raises(ValueError, match="max_rank must be >= 1, got 0"):
        TTTable(FIELDS, DIM, compression=10, max_rank=0)
    with pytest.raises(
        BudgetError,
        match=r"tt cannot reach compression 1000 for these fields: "
        r"needs at least \d+ bytes, budget is 337",
    ):
        TTTable(FIELDS, DIM, compression=1000)


# --- mde --------------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", [2, 4, 10])
def test_mde_dims_decrease_with_cardinality(compression: float) -> None:
    table = MixedDimTable(FIELDS, DIM, compression=compression)
    by_card = sorted(zip([f.cardinality for f in FIELDS], table.dims, strict=True))
    dims = [d for _, d in by_card]
    assert dims == sorted(dims, reverse=True)
    assert table.dims[2] == DIM  # ctx (7 ids) keeps the full dim
    assert table.memory_bytes() <= table.budget_bytes
    assert table.memory_bytes() >= 0.8 * table.budget_bytes  # measured 0.85 at 10x, 0.90 at 2x


def test_mde_projection_shapes_and_output() -> None:
    table = MixedDimTable(FIELDS, DIM, compression=10, seed=2)
    for f, (field, d) in enumerate(zip(FIELDS, table.dims, strict=True)):
        assert tuple(table.weights[f].shape) == (field.cardinality, d)
        if d < DIM:
            assert tuple(table.projections[str(f)].shape) == (d, DIM)
        else:
            assert str(f) not in table.projections
    ids = torch.tensor([[5, 4000, 6, 200]])
    out = table(ids)
    for f in range(4):
        row = table.weights[f][int(ids[0, f])]
        if str(f) in table.projections:
            row = row @ table.projections[str(f)]
        torch.testing.assert_close(out[0, f], row)


def test_mde_alpha_zero_gives_uniform_dims() -> None:
    table = MixedDimTable([Field("a", 1000), Field("b", 3000)], DIM, compression=4, alpha=0.0)
    assert table.dims[0] == table.dims[1] < DIM


def test_mde_bad_kwargs_and_budget() -> None:
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 1.5"):
        MixedDimTable(FIELDS, DIM, compression=10, alpha=1.5)
    with pytest.raises(ValueError, match=r"alpha must be >= 0, got -0\.1"):
        MixedDimTable(FIELDS, DIM, compression=10, alpha=-0.1)
    with pytest.raises(
        BudgetError,
        match=r"mde cannot reach compression 100 for these fields: "
        r"needs at least 21372 bytes, budget is 3378",
    ):
        MixedDimTable(FIELDS, DIM, compression=100)
