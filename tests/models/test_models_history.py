"""CTR models with a behaviour history: masked mean pooling, empty histories, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedlab.data import CTRDataset
from embedlab.models import make_model
from embedlab.tables import Field, FullTable
from embedlab.training import CTRTrainer

FIELDS = [Field("user", 20), Field("item", 30)]


def model(name: str = "deepfm") -> torch.nn.Module:
    return make_model(name, FullTable(FIELDS, dim=4), history_field=1)


def test_mean_pooling_matches_a_naive_loop() -> None:
    m = make_model("fm", FullTable(FIELDS, dim=4), history_field=1)
    ids = torch.tensor([[1, 2], [3, 4], [5, 6]])
    history = torch.tensor([[7, 8, -1], [-1, -1, -1], [9, 9, 10]])
    _, emb = m.forward_with_embeddings(ids, None, history)
    assert emb.shape == (3, 3, 4)
    weight = m.table.weight.detach()
    offset = FIELDS[0].cardinality
    for b in range(3):
        items = [int(i) for i in history[b] if i >= 0]
        expected = (
            torch.stack([weight[offset + i] for i in items]).mean(0) if items else torch.zeros(4)
        )
        torch.testing.assert_close(emb[b, 2].detach(), expected)


@pytest.mark.parametrize("name", ["lr", "fm", "deepfm", "dcnv2", "autoint", "autoint_plus"])
def test_every_model_takes_a_history(name: str) -> None:
    m = model(name)
    out = m(torch.tensor([[1, 2], [3, 4]]), None, torch.tensor([[5, -1], [-1, -1]]))
    assert out.shape == (2,) and torch.isfinite(out).all()


def test_history_presence_must_match_the_model() -> None:
    with pytest.raises(ValueError, match=r"history must be given"):
        model()(torch.tensor([[1, 2]]))
    plain = make_model("fm", FullTable(FIELDS, dim=4))
    with pytest.raises(ValueError, match=r"history must be None"):
        plain(torch.tensor([[1, 2]]), None, torch.tensor([[1]]))
    with pytest.raises(ValueError, match=r"history must have shape \(batch=1, max_len\)"):
        model()(torch.tensor([[1, 2]]), None, torch.tensor([[1], [2]]))
    with pytest.raises(ValueError, match=r"history_field must be <= 1"):
        make_model("fm", FullTable(FIELDS, dim=4), history_field=2)


def test_dataset_checks_history_and_trainer_passes_it() -> None:
    rng = np.random.default_rng(0)
    n = 400
    ids = np.stack([rng.integers(0, 20, n), rng.integers(0, 30, n)], axis=1)
    history = rng.integers(-1, 30, (n, 5))
    labels = (ids[:, 1] % 2).astype(np.float32)
    data = CTRDataset(
        ids, labels, tuple(FIELDS), history=history, history_field=1, groups=ids[:, 0]
    )
    assert data.subset(np.arange(10)).history.shape == (10, 5)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"history ids must be -1 \(padding\) or in \[0, 30\)"):
        CTRDataset(ids, labels, tuple(FIELDS), history=history + 40, history_field=1)
    with pytest.raises(ValueError, match=r"history_field must be a column index"):
        CTRDataset(ids, labels, tuple(FIELDS), history=history, history_field=5)
    with pytest.raises(ValueError, match=r"must carry a behaviour history"):
        CTRTrainer(epochs=1, progress=False).fit(model(), CTRDataset(ids, labels, tuple(FIELDS)))
    result = CTRTrainer(epochs=1, progress=False).fit(model(), data)
    assert result.epochs_run == 1
