"""PEP's learned thresholds: the soft threshold against a naive loop, and the paper's
mechanism on a tiny synthetic log (thresholds rise and prune the ids the label ignores)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from embedlab.data import CTRDataset
from embedlab.models import make_model
from embedlab.tables import Field
from embedlab.tables._phases import PhaseContext
from embedlab.tables.pep import PEPTable, soft_threshold
from embedlab.training.ctr import CTRTrainer

FIELDS = [Field("user", 30), Field("item", 50), Field("ctx", 3)]
DIM = 4


def naive_soft_threshold(v: np.ndarray, gate: np.ndarray) -> np.ndarray:
    """``sign(v) * max(|v| - g, 0)`` entry by entry in float64."""
    out = np.zeros(v.shape, dtype=np.float64)
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            x, g = float(v[i, j]), float(gate[i, j])
            mag = abs(x) - g
            out[i, j] = math.copysign(mag, x) if mag > 0 and x != 0 else 0.0
    return out


@pytest.mark.parametrize(
    ("granularity", "groups"),
    [("global", 1), ("dim", 1), ("field", 3), ("field_dim", 3), ("feature", 83)],
)
def test_soft_threshold_matches_a_naive_loop(granularity: str, groups: int) -> None:
    table = PEPTable(FIELDS, DIM, granularity=granularity, threshold_lr_mult=2.0)  # type: ignore[arg-type]
    assert table.threshold.shape[0] == groups
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        table.threshold.copy_(torch.randn(table.threshold.shape, generator=gen) - 2.5)
    v = table.weight.detach().double().numpy()
    s = 2.0 * table.threshold.detach().double().numpy()  # s = threshold_lr_mult * t
    field_of_row = np.repeat(np.arange(3), [f.cardinality for f in FIELDS])
    row_group = {"global": 0 * field_of_row, "dim": 0 * field_of_row}.get(
        granularity, field_of_row if granularity.startswith("field") else np.arange(83)
    )
    gate = np.broadcast_to(1.0 / (1.0 + np.exp(-s[row_group])), v.shape)
    expected = naive_soft_threshold(v, gate)
    assert 0 < np.count_nonzero(expected) < expected.size
    np.testing.assert_allclose(
        table.effective_weight().detach().double().numpy(), expected, atol=1e-7
    )
    ids = torch.tensor([[0, 0, 0], [29, 49, 2], [3, 7, 1]])
    rows = (ids + table.offsets).numpy()
    np.testing.assert_allclose(table(ids).detach().double().numpy(), expected[rows], atol=1e-7)
    # the function itself, float64 in -> float64 out
    got = soft_threshold(torch.from_numpy(v), torch.from_numpy(gate.copy()))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_weight_decay_is_the_l2_term_on_v_and_s() -> None:
    table = PEPTable(FIELDS, DIM, weight_decay=1e-3, threshold_lr_mult=4.0)
    assert float(table.regularization().detach()) == 0.0  # off outside a training phase
    data = useless_ids_log(200)
    table.start_phase("prune", PhaseContext(data, None, lambda: 0.5, 1, 1, 0))
    v, s = table.weight.detach().double(), 4.0 * table.threshold.detach().double()
    expected = 0.5e-3 * (float(v.square().sum()) + float(s.square().sum()))
    assert float(table.regularization().detach()) == pytest.approx(expected, rel=1e-5)
    table.regularization().backward()  # type: ignore[no-untyped-call]
    assert table.threshold.grad is not None
    # d/dt of wd/2 * (k t)^2 = wd * k * s: negative for s < 0, so descent raises s
    torch.testing.assert_close(table.threshold.grad.double(), 1e-3 * 4.0 * s, rtol=1e-5, atol=0)
    assert float(PEPTable(FIELDS, DIM, weight_decay=0.0).regularization()) == 0.0


def useless_ids_log(n: int = 6000, seed: int = 0) -> CTRDataset:
    """The label depends on the user (30 ids) only; item (50 ids) and ctx are noise."""
    rng = np.random.default_rng(seed)
    ids = np.stack([rng.integers(0, f.cardinality, n) for f in FIELDS], axis=1).astype(np.int64)
    user_logit = rng.normal(0.0, 2.0, FIELDS[0].cardinality)
    p = 1.0 / (1.0 + np.exp(-user_logit[ids[:, 0]]))
    labels = (rng.random(n) < p).astype(np.float32)
    return CTRDataset(ids=ids, labels=labels, fields=tuple(FIELDS), name="useless")


def search(weight_decay: float) -> tuple[PEPTable, float]:
    data = useless_ids_log().split(seed=0)
    table = PEPTable(
        data.fields,
        DIM,
        compression=10,  # 16 non-zeros: a target the search does not reach
        threshold_init=-8.0,
        threshold_lr_mult=40.0,
        weight_decay=weight_decay,
    )
    start = float(table.gate().detach().mean())
    model = make_model("fm", table, seed=0)
    trainer = CTRTrainer(epochs=4, patience=10, progress=False, batch_size=256, lr=3e-3)
    trainer.fit(model, data.train, data.valid)
    return table, start


def field_means(table: PEPTable, values: torch.Tensor) -> list[float]:
    """Mean of ``values`` (one row per id) over each field's rows."""
    bounds = zip(table.offsets.tolist(), table.cardinalities, strict=True)
    return [float(values[lo : lo + n].float().mean()) for lo, n in bounds]


def test_thresholds_rise_with_the_papers_decay_and_prune_useless_ids() -> None:
    table, start = search(weight_decay=1e-5)
    found = table.describe()
    # measured: mean gate 3.4e-4 -> 0.11, learned sparsity 0.39 (0.06 without decay)
    assert float(found["threshold_mean"]) > 100 * start  # type: ignore[arg-type]
    assert float(found["learned_sparsity"]) > 0.3, found  # type: ignore[arg-type]
    s = table.threshold_lr_mult * table.threshold.detach()
    user, item, _ = field_means(table, s)
    assert item > user + 1.0  # measured -1.9 against -4.1: the ignored ids are cut first
    kept_user, kept_item, _ = field_means(table, table.mask)
    assert kept_item < kept_user
    # ... and without the decay the loss alone lowers the thresholds
    flat, _ = search(weight_decay=0.0)
    assert float(flat.describe()["threshold_mean"]) < start  # type: ignore[arg-type]
    assert float(flat.describe()["learned_sparsity"]) < 0.1  # type: ignore[arg-type]
