"""BT^2 with two chained basis transformations: exact structure and the paper's losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _metric_helpers import TinySupCon

from embedlab.data import LabeledData, load_digits
from embedlab.training.compat import compatibility_metrics
from embedlab.training.compat_chain import (
    ChainedBT2Loss,
    ChainedCompatibleEncoder,
    pseudo_classifier,
    train_bt2_chained,
)
from embedlab.training.encoders import MLPEncoder
from embedlab.training.metric import MetricTrainer, embed


def _encoder(d_old: int = 4, d_new: int = 6, d_extra: int = 3) -> ChainedCompatibleEncoder:
    return ChainedCompatibleEncoder(
        MLPEncoder(d_new, in_features=5, hidden=(8,), seed=0), d_old, d_new, d_extra, seed=2
    )


def test_chained_output_matches_a_naive_float64_reference() -> None:
    enc = _encoder().eval()
    with torch.no_grad():
        # perturb the transformations away from the identity
        for bt in (enc.q1, enc.q2):
            base = bt.linear.parametrizations.weight.original
            base.add_(0.5 * torch.randn(base.shape, generator=torch.Generator().manual_seed(1)))
        x = torch.randn(7, 5)
        out = enc(x).double()
        f = enc.backbone(x).double().numpy()
        a = enc.head(torch.relu(enc.backbone(x))).double().numpy()[:, :3]
        q1 = enc.q1.matrix.double().numpy()
        q2 = enc.q2.matrix.double().numpy()
    f_hat = f / np.linalg.norm(f, axis=1, keepdims=True)
    a_hat = a / np.linalg.norm(a, axis=1, keepdims=True)
    # loop reference: u = [a_hat, Q1 (3 f_hat)], out = [Q2 u[:4], u[4:]]
    for i in range(7):
        u = np.concatenate([a_hat[i], q1 @ (3.0 * f_hat[i])])
        ref = np.concatenate([q2 @ u[:4], u[4:]])
        np.testing.assert_allclose(out[i].numpy(), ref, atol=1e-5)
    # orthonormal chain: norms kept, the new' feature is recovered exactly from the output
    b = enc.matrix().detach().double().numpy()
    np.testing.assert_allclose(b.T @ b, np.eye(9), atol=1e-5)
    np.testing.assert_allclose((out.numpy() ** 2).sum(1), 1.0 + 9.0, atol=1e-4)
    recovered = out.numpy() @ b  # = B^T out = [a_hat, 3 f_hat]
    np.testing.assert_allclose(recovered[:, 3:] / 3.0, f_hat, atol=1e-5)
    np.testing.assert_allclose(recovered[:, :3], a_hat, atol=1e-5)
    np.testing.assert_allclose(enc.forward_old(x).detach().numpy(), out[:, :4].numpy(), atol=1e-6)


def test_chained_loss_matches_the_formula() -> None:
    torch.manual_seed(0)
    protos = torch.randn(3, 4)
    loss = ChainedBT2Loss(
        TinySupCon(),
        protos,
        d_new=6,
        d_extra=3,
        with_reference=True,
        influence_weight=2.0,
        old_weight=3.0,
        reference_weight=0.5,
    )
    emb = torch.randn(5, 9 + 6 + 4 + 6).double()
    labels = torch.tensor([0, 1, 2, 0, 1])
    got = float(loss(emb.float(), labels))
    e = emb.numpy()
    out, f_hat, old, ref = e[:, :9], e[:, 9:15], e[:, 15:19], e[:, 19:]
    p = protos.double().numpy()
    total = float(TinySupCon()(torch.from_numpy(f_hat), labels))
    infl = old_cos = ref_cos = 0.0
    for i in range(5):
        c = out[i, :4] / np.linalg.norm(out[i, :4])
        logits = p @ c
        infl += np.log(np.exp(logits).sum()) - logits[labels[i]]
        old_cos += 1 - c @ old[i]
        ref_cos += 1 - f_hat[i] @ ref[i]
    total += 2.0 * infl / 5 + 3.0 * old_cos / 5 + 0.5 * ref_cos / 5
    assert got == pytest.approx(total, rel=1e-4)
    with pytest.raises(ValueError, match=r"emb must have shape \(batch, 25\)"):
        loss(torch.randn(5, 9), labels)
    with pytest.raises(ValueError, match="d_extra must be <= 4"):
        _encoder(d_extra=5)
    with pytest.raises(ValueError, match="d_new \\+ d_extra must be >= d_old=4"):
        _encoder(d_new=2, d_extra=1)


def _cos_to_old(enc: ChainedCompatibleEncoder, old: MLPEncoder, x: np.ndarray) -> float:
    o = embed(old, x)
    n = embed(enc, x)[:, : enc.d_old]
    o /= np.linalg.norm(o, axis=1, keepdims=True)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    return float((o * n).sum(1).mean())


def test_chained_bt2_training_moves_the_compatible_part_onto_the_old_space() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    x = (3 * rng.standard_normal((4, 16))[y] + rng.standard_normal((200, 16))).astype("float32")
    train = LabeledData(x, y)
    old = MLPEncoder(6, in_features=16, hidden=(16,), seed=1)
    untrained = ChainedCompatibleEncoder(
        MLPEncoder(6, in_features=16, hidden=(32,), seed=2), 6, 6, 3, seed=0
    )
    before = _cos_to_old(untrained, old, x)
    result = train_bt2_chained(
        old,
        MLPEncoder(6, in_features=16, hidden=(32,), seed=2),
        TinySupCon(),
        train,
        d_old=6,
        d_new=6,
        d_extra=3,
        trainer=MetricTrainer(epochs=3, batch_size=50, lr=1e-2, progress=False, seed=2),
    )
    after = _cos_to_old(result.encoder, old, x)
    # measured: before -0.08, after 0.84 (5 epochs: 0.92)
    assert after > 0.6 and after > before + 0.4


@pytest.mark.slow
def test_chained_bt2_trains_and_keeps_the_old_space() -> None:
    data = load_digits()
    mask = np.random.default_rng(0).random(len(data)) < 0.5
    train, test = LabeledData(data.x[mask], data.y[mask]), LabeledData(data.x[~mask], data.y[~mask])
    old = MLPEncoder(8, in_features=64, hidden=(32,), seed=1)
    MetricTrainer(epochs=1, batch_size=32, progress=False, seed=1).fit(old, TinySupCon(), train)
    protos = pseudo_classifier(old, train, 10)
    assert protos.shape == (10, 8) and float(protos.norm(dim=1).max()) <= 1.0 + 1e-6
    ref = MLPEncoder(8, in_features=64, hidden=(128,), seed=3)
    MetricTrainer(epochs=2, batch_size=32, progress=False, seed=3).fit(ref, TinySupCon(), train)
    result = train_bt2_chained(
        old,
        MLPEncoder(8, in_features=64, hidden=(128,), seed=2),
        TinySupCon(),
        train,
        d_old=8,
        d_new=8,
        d_extra=4,
        reference_encoder=ref,
        trainer=MetricTrainer(epochs=20, batch_size=32, progress=False, seed=2),
    )
    b = result.encoder.matrix().detach().double()
    assert torch.allclose(b.T @ b, torch.eye(12, dtype=torch.float64), atol=1e-5)
    m = compatibility_metrics(old, result.encoder, test)
    # the compatible part lives in the old space: far above chance (0.1) against the old
    # gallery. Measured (20 epochs): P@1 new/old 0.579, old/old 0.676, new/new 0.847;
    # MAP@R new/old 0.226, old/old 0.188.
    assert m["new_old_precision_at_1"] > 0.45
    assert m["new_old_map_at_r"] > m["old_old_map_at_r"]
    assert m["new_new_precision_at_1"] > m["old_old_precision_at_1"]
