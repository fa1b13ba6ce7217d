"""Dynamic Subspace Learners: routing against a naive loop, seeded growth of K, errors."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from embedlab.data.labeled import LabeledData
from embedlab.losses import DSLLoss, TripletLoss, make_loss
from embedlab.training.encoders import MLPEncoder
from embedlab.training.metric import MetricTrainer

DIM = 12


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny tensors: extra threads only add contention on a 2-core runner."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def batches(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, DIM, generator=gen), torch.arange(16) % 4) for _ in range(n)]


def test_loss_is_the_share_weighted_base_loss_of_each_learner() -> None:
    loss = DSLLoss("triplet", k_max=3, dim=DIM)
    loss.k.fill_(3)
    gen = torch.Generator().manual_seed(0)
    loss.centroids.copy_(F.normalize(torch.randn(3, DIM, generator=gen), dim=1))
    x, y = torch.randn(24, DIM, generator=gen), torch.arange(24) % 3
    base = TripletLoss()
    expected = 0.0
    cents = loss.centroids
    for k, part in enumerate([slice(0, 4), slice(4, 8), slice(8, 12)]):
        rows = [i for i in range(24) if int((F.normalize(x[i], dim=0) @ cents.T).argmax()) == k]
        if len(rows) >= 2:
            sub = F.normalize(x[rows, part], dim=1)
            expected += float(base(sub, y[rows])) * len(rows) / 24
    loss.eval()
    assert float(loss(x, y)) == pytest.approx(expected, rel=1e-6)
    assert loss.subspaces() == [slice(0, 4), slice(4, 8), slice(8, 12)]


def grown(seed: int, tol: float) -> DSLLoss:
    loss = DSLLoss("triplet", k_max=3, grow_every=3, plateau_tol=tol, memory=64, seed=seed, dim=DIM)
    loss.train()
    for x, y in batches(14, 0):
        loss(x, y)
    return loss


def test_k_grows_deterministically_under_a_seed() -> None:
    a, b, c = grown(0, 1.0), grown(0, 1.0), grown(1, 1.0)
    # tol 1.0: every check after a first window of the current K is a plateau
    assert a.growth_log == [(6, 2), (12, 3)] and a.n_learners == 3
    assert b.growth_log == a.growth_log and torch.equal(a.centroids, b.centroids)
    assert not torch.equal(a.centroids, c.centroids)  # the seed drives the clustering
    never = grown(0, -1e9)
    assert never.n_learners == 1 and never.growth_log == []


def test_growth_inside_the_metric_trainer_is_reproducible() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 1, 4, 4)).astype(np.float32) + np.repeat(np.arange(4), 24)[
        :, None, None, None
    ].astype(np.float32)
    data = LabeledData(x, np.repeat(np.arange(4), 24), name="tiny")

    def run() -> tuple[DSLLoss, list[dict[str, float]]]:
        loss = make_loss("dsl(base=triplet, k_max=3, grow_every=2, plateau_tol=1.0)", dim=DIM)
        trainer = MetricTrainer(epochs=2, batch_size=16, progress=False, seed=3)
        result = trainer.fit(MLPEncoder(DIM, in_features=16, seed=0), loss, data)
        assert isinstance(loss, DSLLoss)
        return loss, result.history

    (l1, h1), (l2, h2) = run(), run()
    assert l1.n_learners == 3 and l1.growth_log == l2.growth_log
    assert [h["train_loss"] for h in h1] == [h["train_loss"] for h in h2]
    assert torch.equal(l1.centroids, l2.centroids)


def test_state_round_trips_through_the_state_dict() -> None:
    a = grown(0, 1.0)
    b = DSLLoss("triplet", k_max=3, grow_every=3, plateau_tol=1.0, memory=64, dim=DIM)
    b.load_state_dict(a.state_dict())
    assert b.n_learners == 3 and torch.equal(a.centroids, b.centroids)
    early = grown(0, 1.0)
    early.load_state_dict(grown_until(8).state_dict())  # as a trainer restoring a best epoch
    assert early.bench_params() == {
        "n_learners": 2,
        "growth_steps": [6],
        "dsl_steps": 8,
        "max_learners_reached": 3,
    }


def grown_until(n_steps: int) -> DSLLoss:
    loss = DSLLoss("triplet", k_max=3, grow_every=3, plateau_tol=1.0, memory=64, dim=DIM)
    for x, y in batches(n_steps, 0):
        loss(x, y)
    return loss


def test_errors_name_the_parameter() -> None:
    with pytest.raises(ValueError, match=r"k_max must be <= dim=12, got 13"):
        DSLLoss(k_max=13, dim=DIM)
    with pytest.raises(ValueError, match=r"dim must be given"):
        DSLLoss()
    with pytest.raises(ValueError, match=r"base must be a loss on \(embeddings, labels\)"):
        DSLLoss("mv_infonce", dim=DIM)
    with pytest.raises(ValueError, match=r"memory must be >= 4, got 2"):
        DSLLoss(k_max=4, memory=2, dim=DIM)
    with pytest.raises(ValueError, match=r"embeddings must have dim=12 columns, got 8"):
        DSLLoss(dim=DIM)(torch.randn(8, 8), torch.arange(8) % 2)
    with pytest.raises(ValueError, match=r"unknown hyper-parameter 'kmax' for loss 'dsl'"):
        make_loss("dsl(kmax=3)", dim=DIM)
