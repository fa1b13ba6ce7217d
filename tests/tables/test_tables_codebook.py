"""dpq and mgqe: product-quantised codes, their bit-packed storage and the two phases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from embedlab.data import CTRDataset, make_ctr
from embedlab.models import make_model
from embedlab.tables import BudgetError, Field, make_table
from embedlab.tables._bits import unpack_bits
from embedlab.tables._codebook import (
    CENTROID_CHOICES,
    PQPlan,
    ProductQuantizedTable,
    ProductQuantizer,
    plan_pq,
    split_tiers,
    tier_map_bytes,
)
from embedlab.tables._phases import PhaseContext
from embedlab.tables.dpq import DPQTable
from embedlab.tables.mgqe import MGQETable
from embedlab.training.ctr import CTRTrainer

FIELDS = [Field("user", 957), Field("item", 4082), Field("ctx", 7), Field("city", 233)]
N_IDS = sum(f.cardinality for f in FIELDS)  # 5279
DIM = 16
CLASSES = [DPQTable, MGQETable]


def some_ids(batch: int = 64, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.stack(
        [torch.randint(0, f.cardinality, (batch,), generator=gen) for f in FIELDS], dim=1
    )


def context(ids: np.ndarray) -> PhaseContext:
    data = CTRDataset(ids=ids, labels=np.zeros(len(ids), dtype=np.float32), fields=tuple(FIELDS))

    def no_eval() -> float:
        raise AssertionError("not used")

    return PhaseContext(data, None, no_eval, steps_per_epoch=1, max_epochs=1, seed=0)


def naive_lookup(table: ProductQuantizedTable, ids: torch.Tensor) -> torch.Tensor:
    """Concatenate value centroids indexed by the frozen codes, one id at a time."""
    values = table.quantizer.values.detach()
    offsets = np.cumsum([0, *table.cardinalities[:-1]])
    out = torch.empty(*ids.shape, table.dim)
    for b, f in itertools.product(range(ids.shape[0]), range(ids.shape[1])):
        code = table.codes[int(ids[b, f]) + int(offsets[f])]
        out[b, f] = torch.cat([values[g, int(c)] for g, c in enumerate(code)])
    return out


# --- storage accounting and planning ------------------------------------------------
def test_dpq_bytes_by_hand() -> None:
    table = DPQTable(FIELDS, DIM, compression=10)
    # 10x: 33785 bytes. D=16, K=8 gives 48 code bits per id: 5279 * 48 / 8 = 31674 bytes
    # of codes + 8 * 16 * 4 = 512 of values. 56 bits (D=8, K=128: 36946 + 8192) do not fit.
    assert (table.plan.groups, table.plan.centroids, table.plan.bits) == (16, (8,), (48,))
    assert table.memory_bytes() == 31674 + 512 == 32186 <= table.budget_bytes == 33785
    # 100x: 3378 bytes. D=4, K=2 (4 bits) ties with D=2, K=4 and D=1, K=16 on bits; the
    # smaller codebook wins: ceil(5279 * 4 / 8) = 2640 + 2 * 16 * 4 = 128.
    table = DPQTable(FIELDS, DIM, compression=100)
    assert (table.plan.groups, table.plan.centroids) == (4, (2,))
    assert table.memory_bytes() == 2640 + 128


def test_mgqe_bytes_by_hand() -> None:
    table = MGQETable(FIELDS, DIM, compression=10)
    # head: ceil(0.2 * card) = 192 + 817 + 2 + 47 = 1058 ids, tail 4221.
    assert table.plan.tier_sizes == (1058, 4221)
    assert (table.plan.groups, table.plan.centroids) == (16, (32, 4))
    head = 1058 * 16 * 5 // 8  # 5 bits per code: 10580 bytes
    tail = 4221 * 16 * 2 // 8  # 2 bits per code: 16884 bytes
    tier_map = math.ceil(N_IDS / 8) + math.ceil(N_IDS / 512) * 4  # 660 + 44
    assert table.memory_bytes() == head + tail + 32 * 16 * 4 + tier_map == 30216
    assert table.describe()["code_bits_per_id"] == [80, 32]


@pytest.mark.parametrize("cls", CLASSES)
def test_export_is_what_memory_counts(cls: type[ProductQuantizedTable]) -> None:
    table = cls(FIELDS, DIM, compression=10, seed=1)
    with pytest.raises(RuntimeError, match="codes must be frozen before export"):
        table.export_packed()
    table.freeze()
    packed = table.export_packed()
    assert sum(t.numel() * t.element_size() for t in packed.values()) == table.memory_bytes()
    # the packed codes decode back to the frozen codes, tier by tier in ascending id
    tier = torch.zeros(N_IDS, dtype=torch.int64) if table.tier is None else table.tier.long()
    for t, k in enumerate(table.plan.centroids):
        rows = table.codes[tier == t].long()
        bits = max(1, (k - 1).bit_length())
        assert torch.equal(unpack_bits(packed[f"codes_{t}"], bits, rows.numel()), rows.view(-1))
    if table.tier is not None:
        assert torch.equal(unpack_bits(packed["tier_map"], 1, N_IDS), tier)
        ranks = packed["tier_rank"][:, 0].long()
        assert torch.equal(ranks, torch.cumsum(tier == 0, 0)[::512] - (tier[::512] == 0).long())


def test_tier_map_and_split() -> None:
    assert tier_map_bytes(1000, 1) == 0
    assert tier_map_bytes(1000, 2) == 125 + 2 * 4
    assert tier_map_bytes(1000, 3) == 250 + 2 * 2 * 4  # 2 bits per id, 2 counts per block
    assert split_tiers(7, (0.2,)) == (2, 5)
    assert split_tiers(1, (0.2,)) == (1, 0)
    assert split_tiers(10, (0.1, 0.2)) == (1, 2, 7)


@pytest.mark.parametrize("budget", [900, 1500, 4000, 12000, 60000])
@pytest.mark.parametrize("tiers", [(1000,), (200, 800)])
def test_plan_is_the_best_feasible(budget: int, tiers: tuple[int, ...]) -> None:
    dim = 8
    plan = plan_pq("m", tiers, dim, budget, compression=1)
    assert plan.total_bytes <= budget
    best = 0
    for d in (1, 2, 4, 8):
        for ks in itertools.product(CENTROID_CHOICES, repeat=len(tiers)):
            if list(ks) != sorted(set(ks), reverse=True):
                continue
            codes = sum(math.ceil(n * d * math.log2(k) / 8) for n, k in zip(tiers, ks, strict=True))
            size = codes + ks[0] * dim * 4 + tier_map_bytes(1000, len(tiers))
            bits = sum(n * d * int(math.log2(k)) for n, k in zip(tiers, ks, strict=True))
            assert PQPlan(dim, d, ks, tiers).total_bytes == size
            if size <= budget:
                best = max(best, bits)
    assert plan.total_code_bits == best


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("compression", [2, 10, 100])
def test_budget_fits(cls: type[ProductQuantizedTable], compression: float) -> None:
    table = cls(FIELDS, DIM, compression=compression)
    assert 0 < table.memory_bytes() <= table.budget_bytes
    table.freeze()
    assert table.memory_bytes() <= table.budget_bytes
    assert table(some_ids()).shape == (64, len(FIELDS), DIM)


def test_budget_error_at_1000() -> None:
    # dpq's floor: 1 bit per id (660 bytes) + 2 * 16 * 4 = 788 bytes; 1000x is 337 bytes.
    with pytest.raises(
        BudgetError,
        match=r"dpq cannot reach compression 1000 for these fields: needs at least 788 bytes, "
        r"budget is 337 \(dpq reaches compression at most 428\.8x",
    ):
        DPQTable(FIELDS, DIM, compression=1000)
    with pytest.raises(BudgetError, match=r"mgqe cannot reach compression 1000 .* at most"):
        MGQETable(FIELDS, DIM, compression=1000)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="groups must divide dim=16, got 3"):
        DPQTable(FIELDS, DIM, groups=3)
    with pytest.raises(ValueError, match="variant must be one of sx, vq; got 'pq'"):
        DPQTable(FIELDS, DIM, variant="pq")
    with pytest.raises(ValueError, match=r"head_fraction must be in \(0, 1\), got 1.5"):
        MGQETable(FIELDS, DIM, head_fraction=1.5)
    assert DPQTable(FIELDS, DIM, compression=10, groups=4).plan.centroids == (128,)


# --- the quantisation layer ------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_straight_through_matches_reference(seed: int) -> None:
    """The hand-written SX backward equals autograd on (one_hot + soft - soft.detach()) @ V."""
    gen = torch.Generator().manual_seed(seed)
    pq = ProductQuantizer(
        8,
        2,
        16,
        variant="sx",
        temperature=0.7,
        beta=0.0,
        key_std=1.0,
        value_std=1.0,
        generator=gen,
    )
    q = torch.randn(50, 8, generator=gen, requires_grad=True)
    limit = torch.randint(2, 17, (50,), generator=gen)
    w = torch.randn(50, 8, generator=gen)
    out, loss = pq(q, limit)
    assert loss is None
    (out * w).sum().backward()
    assert pq.keys is not None and pq.keys.grad is not None and pq.values.grad is not None
    grads = [q.grad.clone(), pq.keys.grad.clone(), pq.values.grad.clone()]  # type: ignore[union-attr]

    qd = q.detach().clone().requires_grad_(True)
    keys = pq.keys.detach().clone().requires_grad_(True)
    values = pq.values.detach().clone().requires_grad_(True)
    qg = qd.view(50, 2, 4)
    dist = (qg.unsqueeze(2) - keys.unsqueeze(0)).square().sum(-1)  # (n, D, K), naive
    masked = torch.arange(16) >= limit.view(-1, 1, 1)
    logits = (-dist / 0.7).masked_fill(masked, -math.inf)
    soft = logits.softmax(-1)
    hard = torch.nn.functional.one_hot(logits.argmax(-1), 16).float()
    ref = torch.einsum("ngk,gks->ngs", hard + soft - soft.detach(), values).reshape(50, 8)
    (ref * w).sum().backward()
    torch.testing.assert_close(out, ref)
    for got, want in zip(grads, [qd.grad, keys.grad, values.grad], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # forward is exactly the nearest key's value centroid, within each row's limit
    codes = pq.assign(q.detach(), limit)
    assert torch.equal(codes, logits.argmax(-1))
    assert bool((codes < limit.unsqueeze(1)).all())
    assert torch.equal(out.detach(), pq.decode(codes))


@pytest.mark.parametrize("cls", CLASSES)
def test_gradients_reach_the_query_through_the_codes(cls: type[ProductQuantizedTable]) -> None:
    table = cls(FIELDS, DIM, compression=10)
    ids = some_ids(batch=8)
    out = table(ids)
    out.square().sum().backward()
    grad = table.query.grad
    assert grad is not None
    offsets = torch.tensor([0, 957, 957 + 4082, 957 + 4082 + 7])
    used = torch.zeros(N_IDS, dtype=torch.bool)
    used[(ids + offsets).view(-1)] = True
    assert bool((grad[used].abs().sum(dim=1) > 0).all())  # every looked-up row learns
    assert float(grad[~used].abs().sum()) == 0.0
    # the forward value is the hard choice: the same as the frozen codes give
    before = out.detach()
    table.freeze()
    assert torch.equal(table(ids), before)


def test_vq_variant_commitment_loss() -> None:
    table = DPQTable(FIELDS, DIM, compression=10, variant="vq", beta=0.25)
    assert table.quantizer.keys is None
    ids = some_ids()
    out = table(ids)
    reg = table.regularization()
    assert float(reg.detach()) > 0
    (out.sum() + reg).backward()
    assert table.query.grad is not None and float(table.query.grad.abs().sum()) > 0
    assert table.quantizer.values.grad is not None
    assert float(table.regularization()) == 0.0  # consumed by the step that read it
    with torch.no_grad():
        table(ids)
    assert float(table.regularization()) == 0.0


# --- tiers and phases ---------------------------------------------------------------------
def test_mgqe_tiers_follow_frequency_and_bound_codes() -> None:
    table = MGQETable(FIELDS, DIM, compression=10, seed=0)
    assert table.tier is not None
    assert table.describe()["tiered_by"] == "uniform"
    assert int(table.tier[:192].max()) == 0 and int(table.tier[192:957].min()) == 1
    # Zipf-like counts with the popular ids at the top of each field
    rng = np.random.default_rng(0)
    cols = [f.cardinality - 1 - rng.zipf(1.3, 3000) % f.cardinality for f in FIELDS]
    ids = np.stack(cols, axis=1).astype(np.int64)
    table.start_phase("train", context(ids))
    assert table.describe()["tiered_by"] == "frequency"
    counts = np.bincount(ids[:, 1], minlength=4082)
    item_tier = table.tier[957 : 957 + 4082].numpy()
    assert (item_tier == 0).sum() == 817
    assert counts[item_tier == 0].min() >= counts[item_tier == 1].max()
    # codes of tier t lie in [0, K_t), while training and once frozen
    k_head, k_tail = table.plan.centroids
    all_ids = torch.arange(N_IDS)
    codes = table.quantizer.assign(table.query.detach(), table._limit(all_ids))
    table.end_phase("train", context(ids))
    assert torch.equal(table.codes.long(), codes)
    tier = table.tier.long()
    assert int(codes[tier == 1].max()) == k_tail - 1
    assert int(codes[tier == 0].max()) == k_head - 1
    assert int(codes.min()) == 0


@pytest.mark.parametrize("cls", CLASSES)
def test_end_phase_drops_query_and_decodes_frozen_codes(cls: type[ProductQuantizedTable]) -> None:
    table = cls(FIELDS, DIM, compression=100, seed=3)
    assert table.phases == ("train", "finetune")
    ids = some_ids(batch=16, seed=1)
    table.end_phase("train", context(some_ids(batch=10).numpy()))
    assert table.frozen and table.describe()["codes_frozen"]
    assert table.query.numel() == 0
    assert table.quantizer.keys is not None and table.quantizer.keys.numel() == 0
    assert table.codes.shape == (N_IDS, table.plan.groups) and table.codes.dtype == torch.uint8
    assert "codes" in table.state_dict()
    assert table.memory_bytes() <= table.budget_bytes
    torch.testing.assert_close(table(ids), naive_lookup(table, ids), rtol=0, atol=0)
    # finetune trains the value centroids only
    trainable = [n for n, p in table.named_parameters() if p.requires_grad]
    assert trainable == ["quantizer.values"]
    table(ids).sum().backward()
    assert table.quantizer.values.grad is not None
    codes = table.codes.clone()
    table.end_phase("finetune", context(some_ids(batch=10).numpy()))
    assert torch.equal(table.codes, codes)
    with pytest.raises(ValueError, match="phase must be one of finetune, train; got 'search'"):
        table.end_phase("search", context(some_ids(batch=10).numpy()))
    # a frozen state loads into a fresh table (which adopts the frozen shapes)
    fresh = cls(FIELDS, DIM, compression=100, seed=5)
    fresh.load_state_dict(table.state_dict())
    assert fresh.frozen and fresh.query.numel() == 0
    assert torch.equal(fresh(ids), table(ids))


@pytest.mark.parametrize(
    ("name", "kwargs"), [("dpq", {}), ("mgqe", {}), ("dpq", {"variant": "vq"})]
)
def test_two_phase_fit_on_synthetic_data(name: str, kwargs: dict[str, object]) -> None:
    data = make_ctr(4000, (50, 20, 5), seed=0).split(seed=0)
    table = make_table(name, data.fields, 8, compression=10, seed=0, **kwargs)
    model = make_model("deepfm", table, hidden=(32,))
    trainer = CTRTrainer(epochs=2, progress=False, batch_size=500, lr=1e-2)
    result = trainer.fit(model, data.train, data.valid)
    assert [p["name"] for p in result.phases] == ["train", "finetune"]
    assert isinstance(table, ProductQuantizedTable) and table.frozen
    assert table.memory_bytes() <= table.budget_bytes
    assert table(torch.zeros(3, 3, dtype=torch.int64)).shape == (3, 3, 8)
    auc = trainer.evaluate(model, data.test)["auc"]
    # measured dpq 0.695, mgqe 0.703, dpq-vq 0.671 (full table 0.714, hash 0.601)
    # (chance 0.5; the budget is 240 bytes: 8 code bits per id)
    assert auc > 0.64, auc
