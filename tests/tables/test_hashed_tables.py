"""hash, ue, robe and dhe against hand-computed hashes (plain Python integer arithmetic)."""

from __future__ import annotations

import pytest
import torch

from embedlab.tables import (
    BudgetError,
    DHETable,
    Field,
    HashTable,
    ROBETable,
    UnifiedEmbeddingTable,
)
from embedlab.tables._budget import allocate_rows

FIELDS = [Field("user", 957), Field("item", 4082), Field("ctx", 7), Field("city", 233)]
DIM = 16
P = 2**31 - 1


def h(coef: torch.Tensor, x: int, m: int) -> int:
    a, b = (int(v) for v in coef)
    return ((a * (x % P) + b) % P) % m


def some_ids(seed: int = 0, batch: int = 32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.stack(
        [torch.randint(0, f.cardinality, (batch,), generator=gen) for f in FIELDS], dim=1
    )


# --- allocate_rows ----------------------------------------------------------------------------
@pytest.mark.parametrize("total", [4, 5, 51, 526, 2638, 5278])
def test_allocate_rows_invariants(total: int) -> None:
    cards = [f.cardinality for f in FIELDS]
    rows = allocate_rows(cards, total)
    assert sum(rows) <= total
    assert all(1 <= r <= c for r, c in zip(rows, cards, strict=True))
    assert sum(rows) >= min(total, sum(cards)) - len(cards)  # nearly all rows are used


def test_allocate_rows_small_fields_full_large_proportional() -> None:
    rows = allocate_rows([957, 4082, 7, 233], 526)
    assert rows[2] == 7  # ctx is within its fair share: no hashing
    # the rest split 519 rows in proportion to cardinality (one row each is reserved
    # first, so a field may sit up to ~2 rows off the exact share)
    assert sum(rows) == 526
    for r, c in ((rows[0], 957), (rows[1], 4082), (rows[3], 233)):
        assert abs(r - 519 * c / (957 + 4082 + 233)) <= 2
    assert allocate_rows([3, 4], 100) == [3, 4]


def test_allocate_rows_needs_one_row_per_field() -> None:
    with pytest.raises(ValueError, match="total must be >= the number of fields 4, got 3"):
        allocate_rows([957, 4082, 7, 233], 3)


# --- hash -------------------------------------------------------------------------------------
def test_hash_matches_manual_hashing() -> None:
    table = HashTable(FIELDS, DIM, compression=10, seed=5)
    ids = some_ids()
    out = table(ids)
    offset = 0
    for f, (field, rows) in enumerate(zip(FIELDS, table.rows, strict=True)):
        for b in range(ids.shape[0]):
            x = int(ids[b, f])
            local = x if rows == field.cardinality else h(table.hash_coef[f], x, rows)
            assert torch.equal(out[b, f], table.weight[offset + local])
        offset += rows
    assert table.describe()["hashed_fields"] == ["user", "item", "city"]


def test_hash_budget_and_oov_on_unhashed_field() -> None:
    table = HashTable(FIELDS, DIM, compression=10)
    assert sum(table.rows) == (table.budget_bytes - 16 * 4) // (DIM * 4)
    assert table.memory_bytes() == sum(table.rows) * DIM * 4 + 4 * 16
    ids = some_ids(batch=2)
    ids[:, 2] = torch.tensor([3, 7 + 10**6])  # ctx keeps a full table; OOV ids are hashed
    out = table(ids)
    start = sum(table.rows[:2])
    assert torch.equal(out[0, 2], table.weight[start + 3])
    assert torch.equal(out[1, 2], table.weight[start + h(table.hash_coef[2], 7 + 10**6, 7)])


# --- ue ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("probes", [1, 2, 4])
def test_ue_matches_manual_multiprobe(probes: int) -> None:
    table = UnifiedEmbeddingTable(FIELDS, DIM, compression=10, probes=probes, seed=1)
    width = DIM // probes
    assert table.buckets == (table.budget_bytes - 16 * 4 * probes) // (width * 4)
    assert table.memory_bytes() == table.buckets * width * 4 + 16 * 4 * probes
    ids = some_ids()
    ids[0, 0] = 10**12  # any id is accepted
    out = table(ids)
    for b in range(ids.shape[0]):
        for f in range(len(FIELDS)):
            x = int(ids[b, f])
            rows = [h(table.hash_coef[f, j], x, table.buckets) for j in range(probes)]
            assert torch.equal(out[b, f], torch.cat([table.weight[r] for r in rows]))


def test_ue_fields_hash_differently() -> None:
    table = UnifiedEmbeddingTable(FIELDS, DIM, compression=10)
    ids = torch.arange(200).unsqueeze(1).repeat(1, 4)  # same id in every field
    rows = table.rows(ids)[..., 0]
    same = (rows[:, 0] == rows[:, 1]).float().mean()
    assert same < 0.05  # measured 0.0 (chance level 1/526)


def test_ue_bad_probes() -> None:
    with pytest.raises(ValueError, match="probes must divide dim=16, got 3"):
        UnifiedEmbeddingTable(FIELDS, DIM, compression=10, probes=3)
    with pytest.raises(ValueError, match="probes must be >= 1, got 0"):
        UnifiedEmbeddingTable(FIELDS, DIM, compression=10, probes=0)


def test_ue_budget_error() -> None:
    with pytest.raises(
        BudgetError,
        match=r"ue cannot reach compression 5000 .* needs at least 128 bytes, budget is 67",
    ):
        UnifiedEmbeddingTable(FIELDS, DIM, compression=5000)


# --- robe -------------------------------------------------------------------------------------
@pytest.mark.parametrize("chunk", [16, 4, 1])
def test_robe_matches_manual_blocks_with_wrap(chunk: int) -> None:
    table = ROBETable(FIELDS, DIM, compression=100, chunk=chunk, seed=2)
    size, n_chunks = table.size, DIM // chunk
    assert size == (table.budget_bytes - 32 * 4) // 4
    ids = torch.arange(600).unsqueeze(1).repeat(1, 4) * torch.tensor([1, 7, 0, 1])
    out = table(ids)
    wrapped = 0
    signs = set()
    for b in range(0, 600, 3):
        for f in (0, 1, 3):
            x = int(ids[b, f])
            parts = []
            for j in range(n_chunks):
                key = x * n_chunks + j
                start = h(table.loc_coef[f], key, size)
                sign = 2.0 * h(table.sign_coef[f], key, 2) - 1.0
                signs.add(sign)
                wrapped += start + chunk > size
                idx = [(start + t) % size for t in range(chunk)]
                parts.append(table.weight.detach()[idx] * sign)
            assert torch.equal(out[b, f], torch.cat(parts))
    assert signs == {-1.0, 1.0}
    if chunk > 1:
        assert wrapped > 0  # the circular wrap was exercised


def test_robe_bad_chunk_and_budget() -> None:
    with pytest.raises(ValueError, match="chunk must divide dim=16, got 5"):
        ROBETable(FIELDS, DIM, compression=10, chunk=5)
    with pytest.raises(
        BudgetError, match=r"robe cannot reach compression 2000 .* needs at least 192 bytes"
    ):
        ROBETable(FIELDS, DIM, compression=2000)


# --- dhe --------------------------------------------------------------------------------------
def test_dhe_encoding_matches_manual_hashes() -> None:
    table = DHETable(FIELDS, DIM, compression=10, seed=4)
    ids = some_ids(batch=6)
    ids[0, 1] = 10**13
    enc = table.encode(ids)
    assert enc.shape == (6, 4, table.n_hashes)
    m = 10**6
    for b in range(6):
        for f in range(4):
            key = h(table.field_coef[f], int(ids[b, f]), P)
            codes = [h(table.hash_coef[j], key, m) for j in range(table.n_hashes)]
            expected = torch.tensor(codes, dtype=torch.float32) * (2.0 / (m - 1)) - 1.0
            torch.testing.assert_close(enc[b, f], expected, rtol=0, atol=1e-6)
    assert torch.equal(table(ids), table.decoder(enc))


def test_dhe_encoding_is_uniform_in_unit_interval() -> None:
    table = DHETable(FIELDS, DIM, compression=10)
    enc = table.encode(some_ids(batch=512))
    assert float(enc.min()) >= -1.0 and float(enc.max()) <= 1.0
    assert abs(float(enc.mean())) < 0.02  # measured 0.008
    assert abs(float(enc.var()) - 1 / 3) < 0.02  # uniform on [-1, 1]: variance 1/3, measured 0.332


def test_dhe_budget_shrinks_hashes_and_counts_coefficients() -> None:
    big = DHETable(FIELDS, DIM, compression=10)
    small = DHETable(FIELDS, DIM, compression=100)
    assert big.n_hashes == 64 and small.n_hashes < 64
    assert small.hidden >= DIM
    for t in (big, small):
        n_params = sum(p.numel() for p in t.parameters())
        assert t.memory_bytes() == 4 * n_params + 16 * (4 + t.n_hashes)
    capped = DHETable(FIELDS, DIM, compression=1, max_hidden=32)
    assert capped.hidden == 32


def test_dhe_bad_kwargs_and_budget() -> None:
    with pytest.raises(ValueError, match="n_hashes must be >= 1, got 0"):
        DHETable(FIELDS, DIM, compression=10, n_hashes=0)
    with pytest.raises(TypeError, match="max_hidden must be an integer"):
        DHETable(FIELDS, DIM, compression=10, max_hidden=2.5)
    with pytest.raises(
        BudgetError, match=r"dhe cannot reach compression 5000 .* needs at least 224 bytes"
    ):
        DHETable(FIELDS, DIM, compression=5000)
