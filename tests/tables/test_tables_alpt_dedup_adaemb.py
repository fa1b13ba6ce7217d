"""ALPT (learned-step low precision), Dedup (merged rows) and AdaEmb (adaptive row pool)."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from embedlab.data import make_ctr
from embedlab.models import make_model
from embedlab.tables import BudgetError, EmbeddingTable, Field
from embedlab.tables._bits import index_bits, pack_bits, packed_bytes, unpack_bits
from embedlab.tables._phases import PhaseContext
from embedlab.tables.adaemb import AdaEmbTable
from embedlab.tables.alpt import ALPTTable
from embedlab.tables.dedup import DedupTable
from embedlab.training.ctr import CTRTrainer

FIELDS = [Field("user", 957), Field("item", 4082), Field("ctx", 7), Field("city", 233)]
N_IDS = sum(f.cardinality for f in FIELDS)  # 5279
DIM = 16
FULL = N_IDS * DIM * 4


def some_ids(batch: int = 64, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.stack(
        [torch.randint(0, f.cardinality, (batch,), generator=gen) for f in FIELDS], dim=1
    )


def train_a_little(table: EmbeddingTable, steps: int = 5, lr: float = 1e-2) -> None:
    opt = torch.optim.Adam(table.parameters(), lr=lr)
    target = torch.randn(64, len(FIELDS), DIM, generator=torch.Generator().manual_seed(1))
    for step in range(1, steps + 1):
        loss = ((table(some_ids(seed=step)) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        table.on_step(step)


# --- bit packing -------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 6, 8, 12, 16])
def test_pack_bits_round_trip(bits: int) -> None:
    gen = torch.Generator().manual_seed(bits)
    values = torch.randint(0, 1 << bits, (5, 13), generator=gen)
    packed = pack_bits(values, bits)
    assert packed.dtype == torch.uint8
    assert packed.shape == (5, packed_bytes(13, bits)) == (5, math.ceil(13 * bits / 8))
    assert torch.equal(unpack_bits(packed, bits, 13), values)


def test_pack_bits_errors_and_index_bits() -> None:
    assert [index_bits(n) for n in (1, 2, 3, 4, 5, 256, 257)] == [1, 1, 2, 2, 3, 8, 9]
    with pytest.raises(ValueError, match=r"values must lie in \[0, 8\) to be packed in 3 bits"):
        pack_bits(torch.tensor([0, 8]), 3)
    with pytest.raises(ValueError, match="packed must be uint8 with 2 bytes in its last axis"):
        unpack_bits(torch.zeros(3, dtype=torch.uint8), 3, 5)


# --- ALPT ----------------------------------------------------------------------------


@pytest.mark.parametrize(("compression", "bits"), [(1, 16), (2, 14), (4, 6), (10, 1)])
def test_alpt_bits_from_budget(compression: float, bits: int) -> None:
    table = ALPTTable(FIELDS, DIM, compression=compression)
    assert table.bits == bits
    assert table.memory_bytes() == N_IDS * (math.ceil(DIM * bits / 8) + 4)
    assert table.memory_bytes() <= table.budget_bytes
    assert ALPTTable(FIELDS, DIM, compression=compression, bits=1).bits == 1


def test_alpt_budget_error_at_100_names_the_range() -> None:
    with pytest.raises(
        BudgetError,
        match=r"alpt cannot reach compression 100 for these fields: needs at least 31674 "
        r"bytes, budget is 3378 .*alpt reaches compression at most 10\.67x",
    ):
        ALPTTable(FIELDS, DIM, compression=100)
    with pytest.raises(
        BudgetError,
        match=r"alpt cannot reach compression 10 with bits=8: needs at least 105580 bytes, "
        r"budget is 33785; the largest width that fits is 1",
    ):
        ALPTTable(FIELDS, DIM, compression=10, bits=8)
    with pytest.raises(ValueError, match="bits must be <= 16, got 17"):
        ALPTTable(FIELDS, DIM, bits=17)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 6, 8])
def test_alpt_codes_take_at_most_2_pow_bits_values_per_row(bits: int) -> None:
    table = ALPTTable(FIELDS, DIM, compression=2, bits=bits, seed=bits)
    train_a_little(table)
    q = table.export_quantized()
    codes, steps = q["codes"], q["steps"]
    assert codes.dtype == torch.int8 and steps.dtype == torch.float32
    assert int(codes.min()) >= -(2 ** (bits - 1)) and int(codes.max()) <= 2 ** (bits - 1) - 1
    w = table.weight.detach()
    offset = 0.5 if bits == 1 else 0.0
    assert torch.equal(w, (codes.float() + offset) * steps.unsqueeze(1))
    srt = w.sort(dim=1).values
    distinct = 1 + (srt[:, 1:] != srt[:, :-1]).sum(dim=1)  # distinct values per row
    assert int(distinct.max()) <= 2**bits
    assert len(torch.unique(codes)) > 1
    if bits == 1:  # the symmetric binary grid {-s/2, +s/2}
        torch.testing.assert_close(w.abs(), (steps / 2).unsqueeze(1).expand_as(w))


def test_alpt_step_gets_the_lsq_gradient_and_changes() -> None:
    table = ALPTTable(FIELDS, DIM, compression=2, bits=4)
    ids = some_ids(batch=256)
    g = torch.randn(256, len(FIELDS), DIM, generator=torch.Generator().manual_seed(2))
    (table(ids) * g).sum().backward()
    assert table.clip.grad is not None and table.weight.grad is not None
    # reference: dL/ds_i = grad_scale * sum over accesses of row i of sum_d g * dQ/ds
    rows = (ids + table.offsets).flatten()
    per_access = (g * table.slope[ids + table.offsets]).sum(-1).flatten()
    ds = torch.zeros(N_IDS, dtype=torch.float64).index_add_(0, rows, per_access.double())
    expected = ds * table.grad_scale / (table.qmax + table.offset)  # chain rule to clip
    torch.testing.assert_close(table.clip.grad.double(), expected, rtol=1e-4, atol=1e-9)
    assert float(table.clip.grad.abs().sum()) > 0
    # the weights' gradient is the straight-through one
    wg = torch.zeros(N_IDS, DIM).index_add_(0, rows, g.reshape(-1, DIM))
    torch.testing.assert_close(table.weight.grad, wg)

    # trained on one batch, the step of every row it touches moves
    before = table.step.detach().clone()
    opt = torch.optim.Adam(table.parameters(), lr=1e-2)
    for step in range(1, 11):
        loss = (table(ids) * g).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        table.on_step(step)
    changed = (table.step.detach() - before).abs() > 0.01 * before
    assert bool(changed[rows].all())


def test_alpt_stochastic_rounding_is_unbiased() -> None:
    n = 4000
    table = ALPTTable([Field("a", n)], DIM, compression=2, bits=4, seed=0)
    x0 = torch.randn(DIM, generator=torch.Generator().manual_seed(3)) * 0.05
    with torch.no_grad():
        table.clip.fill_(float(x0.abs().max()))
        table.weight.copy_(x0.expand(n, DIM))
    table.quantize()  # every row an independent draw of the same vector
    step = float(table.step.detach()[0])
    bias = float((table.weight.detach().mean(0) - x0).abs().max()) / step
    assert bias < 0.05  # measured 0.021; round-to-nearest would be off by up to 0.5
    assert float((table.weight.detach() - x0).abs().max()) <= step * (1 + 1e-4)
    before = table.weight.detach().clone()
    table.quantize()  # idempotent on the grid
    assert torch.equal(before, table.weight.detach())


def test_alpt_packed_export_is_the_counted_memory() -> None:
    table = ALPTTable(FIELDS, DIM, compression=4, seed=1)  # 6 bits: not byte aligned
    train_a_little(table)
    packed = table.export_packed()
    assert packed["packed"].shape == (N_IDS, 12)
    assert sum(t.numel() * t.element_size() for t in packed.values()) == table.memory_bytes()
    other = ALPTTable(FIELDS, DIM, compression=4, seed=5)
    other.load_packed(packed)
    ids = some_ids()
    assert torch.equal(table(ids), other(ids))
    with pytest.raises(ValueError, match=r"tensors must have keys \['packed', 'steps'\]"):
        other.load_packed({"packed": packed["packed"]})


# --- Dedup ---------------------------------------------------------------------------


def dedup_bytes(unique: int) -> int:
    return unique * DIM * 4 + math.ceil(N_IDS * index_bits(unique) / 8)


@pytest.mark.parametrize(("compression", "unique"), [(2, 2515), (10, 435), (100, 11)])
def test_dedup_budget(compression: float, unique: int) -> None:
    table = DedupTable(FIELDS, DIM, compression=compression)
    assert table.planned_rows == unique
    assert dedup_bytes(unique) <= table.budget_bytes < dedup_bytes(unique + 1)
    assert table.memory_bytes() == dedup_bytes(unique)
    assert table.phases == ("train", "finetune")


def test_dedup_budget_error_names_the_range() -> None:
    with pytest.raises(
        BudgetError,
        match=r"dedup cannot reach compression 1000 for these fields: needs at least 788 bytes, "
        r"budget is 337 .*at most 428\.8x",
    ):
        DedupTable(FIELDS, DIM, compression=1000)


def test_dedup_identical_rows_share_storage_losslessly() -> None:
    table = DedupTable(FIELDS, DIM, compression=100, seed=0)  # room for 11 rows
    patterns = torch.randn(5, DIM, generator=torch.Generator().manual_seed(0))
    which = torch.arange(N_IDS) % 5
    with torch.no_grad():
        table.weight.copy_(patterns[which])
    ids = some_ids()
    before = table(ids).detach()
    table.deduplicate()
    assert table.unique_rows == 5 and table.weight.shape == (5, DIM)
    assert table.describe()["pointer_bits"] == 3
    assert torch.equal(table(ids), before)  # merging identical rows loses nothing
    ptr = table.pointers
    for p in range(5):
        assert len(torch.unique(ptr[which == p])) == 1
    assert len(torch.unique(ptr)) == 5
    assert table.memory_bytes() == dedup_bytes(5) <= table.budget_bytes


def test_dedup_merges_near_identical_rows_within_budget() -> None:
    table = DedupTable(FIELDS, DIM, compression=10, seed=1)  # room for 435 rows
    gen = torch.Generator().manual_seed(1)
    patterns = torch.randn(435, DIM, generator=gen)
    which = torch.cat([torch.arange(435), torch.randint(0, 435, (N_IDS - 435,), generator=gen)])
    with torch.no_grad():
        table.weight.copy_(patterns[which] + 1e-4 * torch.randn(N_IDS, DIM, generator=gen))
    table.deduplicate()
    d = table.describe()
    assert d["deduplicated"] is True and d["unique_rows"] == 435 and d["pointer_bits"] == 9
    assert table.memory_bytes() <= table.budget_bytes
    # the near-duplicates of each pattern share one row, and no two patterns do
    first = table.pointers[:435]
    assert len(torch.unique(first)) == 435
    assert torch.equal(table.pointers, first[which])
    assert isinstance(d["relative_error"], float) and d["relative_error"] < 1e-3

    exported = table.export_deduplicated()
    nbytes = sum(t.numel() * t.element_size() for t in exported.values())
    assert nbytes == table.memory_bytes()
    assert torch.equal(table.unpack_pointers(exported["pointers"]), table.pointers)

    # a merged state reloads into a fresh (unmerged) table
    buf = io.BytesIO()
    torch.save(table.state_dict(), buf)
    buf.seek(0)
    fresh = DedupTable(FIELDS, DIM, compression=10, seed=5)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    ids = some_ids()
    assert torch.equal(fresh(ids), table(ids))
    assert fresh.memory_bytes() == table.memory_bytes()


def test_dedup_weights_by_training_frequency() -> None:
    fields = [Field("a", 40)]
    train = make_ctr(200, (40,), seed=0)
    ids = np.zeros_like(train.ids)
    ids[:150] = 7  # id 7 dominates
    ids[150:] = np.arange(50)[:, None] % 40
    train = type(train)(ids=ids, labels=train.labels, fields=fields)
    ctx = PhaseContext(train, None, lambda: 0.5, 1, 1, 0)
    table = DedupTable(fields, DIM, compression=10, seed=0)  # 3 unique rows
    table.start_phase("train", ctx)
    assert float(table.counts[7]) == 153.0 and float(table.counts[39]) == 2.0
    w7 = table.weight.detach()[7].clone()
    table.end_phase("train", ctx)
    # the heavy id pulls its centroid: its row is (almost) kept as it was
    assert float((table.weight.detach()[table.pointers[7]] - w7).norm()) < 0.2 * float(w7.norm())
    with pytest.raises(ValueError, match="phase must be one of finetune, train; got 'search'"):
        table.start_phase("search", ctx)


# --- AdaEmb --------------------------------------------------------------------------


@pytest.mark.parametrize(("compression", "rows"), [(2, 2484), (10, 496), (100, 49)])
def test_adaemb_budget(compression: float, rows: int) -> None:
    table = AdaEmbTable(FIELDS, DIM, compression=compression)
    assert table.pool_rows == rows == table.budget_bytes // (DIM * 4 + 4)
    assert table.memory_bytes() == rows * (DIM * 4 + 4) <= table.budget_bytes
    assert table.weight.shape == (rows, DIM)


def test_adaemb_budget_error() -> None:
    with pytest.raises(
        BudgetError,
        match=r"adaemb cannot reach compression 1e\+06 for these fields: needs at least 68 "
        r"bytes, budget is 0",
    ):
        AdaEmbTable(FIELDS, DIM, compression=1e6)


def hot_ids(batch: int, seed: int) -> torch.Tensor:
    """30 user ids, 15 item ids, one ctx and one city id: 47 hot ids in all."""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack(
        [
            500 + torch.randint(0, 30, (batch,), generator=gen),
            1000 + torch.randint(0, 15, (batch,), generator=gen),
            torch.full((batch,), 3),
            torch.full((batch,), 7),
        ],
        dim=1,
    )


@pytest.mark.parametrize("importance", ["count", "grad"])
def test_adaemb_reallocation_follows_the_accessed_ids(importance: str) -> None:
    table = AdaEmbTable(FIELDS, DIM, compression=100, interval=3, importance=importance)  # 49
    offsets = table.offsets
    hot = torch.unique(hot_ids(4096, 0) + offsets)
    assert len(hot) == 47
    # before: the prior gives the rows to the small fields (all 7 ctx ids, then city)
    assert table.describe()["pooled_per_field"] == [0, 0, 7, 42]
    with torch.no_grad():  # a probe, not an access
        ctx_row = table(torch.tensor([[0, 0, 3, 0]]))[0, 2].clone()
    for step in range(1, 4):
        out = table(hot_ids(256, step))
        (
            out * torch.randn(out.shape, generator=torch.Generator().manual_seed(step))
        ).sum().backward()
        table.on_step(step)  # reallocates at step 3
    pooled = table.pooled_ids()
    assert bool(torch.isin(hot, pooled).all())
    # ctx 3 held a row already; the other 46 hot ids moved in
    assert table.describe()["reallocations"] == 1 and table.describe()["moved_rows"] == 46
    table.eval()
    # an incumbent keeps its weights (no optimizer step was taken)
    assert torch.equal(table(torch.tensor([[0, 0, 3, 0]]))[0, 2], ctx_row)
    # ids without a row read zeros; admitted ids read their fresh row
    cold = torch.tensor([[1, 2, 0, 100], [956, 4081, 0, 200]])
    assert not bool(torch.isin(cold[:, [0, 1, 3]] + offsets[[0, 1, 3]], pooled).any())
    out = table(cold)
    assert torch.equal(out[:, [0, 1, 3]], torch.zeros(2, 3, DIM))
    assert bool((table(hot_ids(4, 9)).abs().sum(-1) > 0).all())


def test_adaemb_export_and_state_round_trip() -> None:
    table = AdaEmbTable(FIELDS, DIM, compression=10, interval=2, seed=1)
    train_a_little(table, steps=4)
    exported = table.export_pooled()
    keys, rows = exported["keys"], exported["rows"]
    assert keys.dtype == torch.int32 and bool((keys[1:] > keys[:-1]).all())
    assert sum(t.numel() * t.element_size() for t in exported.values()) == table.memory_bytes()
    # the deployed lookup: binary search on the sorted keys, missing ids read zeros
    ids = some_ids(batch=128)
    gids = (ids + table.offsets).to(torch.int32)
    pos = torch.searchsorted(keys, gids).clamp(max=len(keys) - 1)
    found = (keys[pos] == gids).unsqueeze(-1)
    table.eval()
    assert torch.equal(rows[pos] * found, table(ids))
    buf = io.BytesIO()
    torch.save(table.state_dict(), buf)
    buf.seek(0)
    other = AdaEmbTable(FIELDS, DIM, compression=10, interval=2, seed=7)
    other.load_state_dict(torch.load(buf, weights_only=True))
    other.eval()
    assert torch.equal(other(ids), table(ids))


# --- end to end ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "compression", "kwargs"),
    [
        (ALPTTable, 4, {}),  # 4 bits at dim 8
        (DedupTable, 4, {}),
        (AdaEmbTable, 2, {"interval": 5}),
    ],
)
def test_fit_on_synthetic_data(
    cls: type[EmbeddingTable], compression: float, kwargs: dict[str, object]
) -> None:
    data = make_ctr(4000, (50, 20, 5), seed=0).split(seed=0)
    table = cls(data.fields, 8, compression=compression, seed=0, **kwargs)
    torch.manual_seed(0)
    model = make_model("deepfm", table, seed=0)
    trainer = CTRTrainer(epochs=2, progress=False, batch_size=256, lr=3e-3)
    result = trainer.fit(model, data.train, data.valid)
    assert [p["name"] for p in result.phases] == list(cls.phases)
    assert table.memory_bytes() <= table.budget_bytes
    out = table(torch.from_numpy(data.test.ids[:16]))
    assert out.shape == (16, 3, 8) and bool(torch.isfinite(out).all())
    auc = trainer.evaluate(model, data.test)["auc"]
    assert auc > 0.6, auc
