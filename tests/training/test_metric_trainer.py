"""MetricTrainer: determinism, input kinds, checkpoints, a quick end-to-end run, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _metric_helpers import TinyPairs, TinySupCon, TinyViews

from embedlab.data import LabeledData, load_digits
from embedlab.evaluate import retrieval_metrics
from embedlab.training.encoders import ConvEncoder, MLPEncoder, make_encoder
from embedlab.training.metric import (
    MetricTrainer,
    augment_batch,
    balanced_batches,
    embed,
    load_checkpoint,
)


@pytest.fixture(scope="module")
def digits() -> LabeledData:
    return load_digits()


def small(data: LabeledData, n: int = 300) -> LabeledData:
    return LabeledData(data.x[:n], data.y[:n], name=data.name)


def test_same_seed_same_history(digits: LabeledData) -> None:
    train = small(digits.select_classes([0, 1, 2, 3, 4]))
    runs = []
    for _ in range(2):
        enc = MLPEncoder(16, in_features=64, seed=0)
        res = MetricTrainer(epochs=2, batch_size=64, seed=3, progress=False).fit(
            enc, TinySupCon(), train, train
        )
        runs.append(([h["train_loss"] for h in res.history], embed(enc, train.x)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    enc = MLPEncoder(16, in_features=64, seed=0)
    other = MetricTrainer(epochs=2, batch_size=64, seed=4, progress=False).fit(
        enc, TinySupCon(), train
    )
    assert [h["train_loss"] for h in other.history] != runs[0][0]


@pytest.mark.parametrize("loss", [TinyViews(), TinyPairs()], ids=["views", "pairs"])
def test_views_and_pairs_losses_train(digits: LabeledData, loss: torch.nn.Module) -> None:
    train = small(digits)
    enc = ConvEncoder(8, image_size=8, width=4, hidden=16)
    res = MetricTrainer(epochs=2, batch_size=50, progress=False, sampler="random").fit(
        enc, loss, train
    )
    assert res.steps == 12 and res.best_valid_precision_at_1 is None
    assert all(np.isfinite(h["train_loss"]) for h in res.history)


def test_checkpoint_round_trip_keeps_the_best_epoch(digits: LabeledData, tmp_path: Path) -> None:
    train = small(digits.select_classes([0, 1, 2]), 200)
    enc = MLPEncoder(8, in_features=64, hidden=(32,))
    trainer = MetricTrainer(epochs=3, batch_size=32, progress=False)
    res = trainer.fit(enc, TinySupCon(), train, train)
    best = max(h["valid_precision_at_1"] for h in res.history)
    assert res.best_valid_precision_at_1 == best
    path = trainer.save_checkpoint(tmp_path / "ckpt.pt")
    assert not list(tmp_path.glob(".*tmp"))  # the temporary file was renamed away
    fresh = MLPEncoder(8, in_features=64, hidden=(32,), seed=7)
    meta = load_checkpoint(path, fresh)
    assert meta["epoch"] == res.best_epoch
    np.testing.assert_array_equal(embed(fresh, train.x), embed(enc, train.x))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"bad\.pt: not a readable embedlab checkpoint"):
        load_checkpoint(tmp_path / "bad.pt", fresh)
    with pytest.raises(RuntimeError, match=r"call fit\(\) first"):
        MetricTrainer().save_checkpoint(tmp_path / "x.pt")


def test_training_beats_the_untrained_encoder(digits: LabeledData) -> None:
    # Seen classes 0-4, held-out samples (the unseen-class protocol on 8x8 digits is
    # dominated by raw-pixel similarity; see benchmarks/metric_mnist.py for MNIST).
    rng = np.random.default_rng(0)
    data = digits.select_classes([0, 1, 2, 3, 4])
    mask = rng.random(len(data)) < 0.5
    train = LabeledData(data.x[mask], data.y[mask])
    test = LabeledData(data.x[~mask], data.y[~mask])
    enc = MLPEncoder(32, in_features=64, seed=0)
    before = retrieval_metrics(embed(enc, test.x), test.y)["map_at_r"]
    MetricTrainer(epochs=8, batch_size=100, progress=False).fit(enc, TinySupCon(), train)
    after = retrieval_metrics(embed(enc, test.x), test.y)["map_at_r"]
    assert after > before + 0.25  # measured 0.596 -> 0.916


def test_balanced_batches_are_p_by_k() -> None:
    labels = np.repeat(np.arange(10), 20)
    batches = balanced_batches(labels, 32, 4, np.random.default_rng(0))
    assert len(batches) == 7
    for b in batches:
        _, counts = np.unique(labels[b], return_counts=True)
        assert len(counts) == 8 and set(counts) == {4}
        assert len(set(b.tolist())) == 32
    few = balanced_batches(np.repeat(np.arange(3), [50, 50, 2]), 30, 4, np.random.default_rng(0))
    assert all(len(b) == 30 for b in few)  # 3 classes x 10, the tiny class with replacement


def test_augment_shifts_images_and_keeps_shapes() -> None:
    x = torch.zeros(4, 1, 8, 8)
    x[:, :, 4, 4] = 1.0
    out = augment_batch(x, torch.Generator().manual_seed(0), max_shift=2, noise=0.0)
    assert out.shape == x.shape and torch.all(out.sum(dim=(1, 2, 3)) == 1.0)
    flat = augment_batch(
        torch.zeros(3, 5), torch.Generator().manual_seed(0), max_shift=2, noise=1.0
    )
    assert flat.shape == (3, 5) and bool(flat.abs().sum() > 0)


def test_encoders_shapes_and_layers() -> None:
    cnn = make_encoder("cnn", 12, (1, 28, 28))
    layers = cnn.forward_layers(torch.zeros(2, 1, 28, 28))  # type: ignore[operator]
    assert [t.shape for t in layers] == [torch.Size([2, 12])] * 3
    mlp = make_encoder("mlp", 6, (1, 8, 8))
    x = torch.rand(3, 1, 8, 8)
    layers = mlp.forward_layers(x)  # type: ignore[operator]
    assert len(layers) == 2 and torch.equal(layers[-1], mlp(x))
    with pytest.raises(ValueError, match="encoder must be one of cnn, cnn_attn, mlp; got 'rnn'"):
        make_encoder("rnn", 4, (1, 8, 8))
    with pytest.raises(ValueError, match="image_size must be divisible by 4, got 10"):
        ConvEncoder(4, image_size=10)


def test_bad_input(digits: LabeledData) -> None:
    one_class = digits.select_classes([3])
    with pytest.raises(ValueError, match="train labels must contain at least 2 classes, got 1"):
        MetricTrainer(progress=False).fit(MLPEncoder(4), TinySupCon(), one_class)
    with pytest.raises(ValueError, match="batch_size must be >= 2, got 1"):
        MetricTrainer(batch_size=1)
    with pytest.raises(ValueError, match="sampler must be one of balanced, random; got 'pk'"):
        MetricTrainer(sampler="pk")  # type: ignore[arg-type]
    bad = TinySupCon()
    bad.input_kind = "graphs"  # type: ignore[misc]
    with pytest.raises(ValueError, match=r"loss\.input_kind must be one of"):
        MetricTrainer(progress=False).fit(MLPEncoder(4), bad, small(digits))

    class NaNLoss(TinySupCon):
        def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return emb.sum() * float("nan")

    with pytest.raises(RuntimeError, match="training loss is nan at epoch 1"):
        MetricTrainer(epochs=1, progress=False).fit(MLPEncoder(4), NaNLoss(), small(digits))
