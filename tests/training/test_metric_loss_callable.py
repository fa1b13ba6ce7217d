"""MetricTrainer takes a plain loss callable (embeddings, labels) -> scalar, not only modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _metric_helpers import TinySupCon

from embedlab.data import LabeledData, load_digits
from embedlab.training.encoders import MLPEncoder
from embedlab.training.metric import MetricTrainer, embed


@pytest.fixture(scope="module")
def train() -> LabeledData:
    data = load_digits().select_classes([0, 1, 2, 3, 4])
    return LabeledData(data.x[:300], data.y[:300], name=data.name)


def _fit(loss: object, train: LabeledData) -> tuple[list[float], np.ndarray]:
    enc = MLPEncoder(16, in_features=64, seed=0)
    res = MetricTrainer(epochs=2, batch_size=64, seed=1, progress=False).fit(
        enc,
        loss,  # type: ignore[arg-type]
        train,
        train,
    )
    return [h["train_loss"] for h in res.history], embed(enc, train.x)


def test_function_trains_like_the_same_module(train: LabeledData) -> None:
    module = TinySupCon()

    def fn(emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return module(emb, labels)

    hist_fn, emb_fn = _fit(fn, train)
    hist_mod, emb_mod = _fit(TinySupCon(), train)
    assert hist_fn == hist_mod
    np.testing.assert_array_equal(emb_fn, emb_mod)
    assert hist_fn[-1] < hist_fn[0]


def test_pml_loss_and_miner_closure_trains(train: LabeledData) -> None:
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
    loss = pml_losses.TripletMarginLoss(margin=0.2)
    miner = pml_miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard")
    hist, emb = _fit(lambda e, y: loss(e, y, miner(e, y)), train)
    assert len(hist) == 2 and all(np.isfinite(hist)) and np.isfinite(emb).all()


def test_not_callable_is_rejected(train: LabeledData) -> None:
    with pytest.raises(
        TypeError, match=r"loss must be a torch\.nn\.Module or a callable .* got int"
    ):
        _fit(3, train)
