"""AE / LQ-AE / β-VAE: shapes, codes, parameter groups, training, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedlab.data.shapes import make_shapes
from embedlab.disentangle import (
    AUTOENCODERS,
    LQAE,
    encode,
    make_autoencoder,
    reconstruction_mse,
    train_autoencoder,
)


@pytest.mark.parametrize("name", ["ae", "lq_ae", "beta_vae"])
@pytest.mark.parametrize("size", [16, 32])
def test_every_autoencoder_shapes_and_gradients(name: str, size: int) -> None:
    torch.manual_seed(0)
    model = make_autoencoder(name, (3, size, size), n_latents=6)
    x = torch.rand(4, 3, size, size)
    loss, parts = model.loss(x, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and parts["bce"] > 0
    assert all(p.grad is not None for p in model.encoder.parameters())
    assert model.reconstruct(x).shape == x.shape
    codes = model.codes(x)
    assert codes.shape == (4, 6)
    assert (codes.dtype == torch.int64) == model.discrete_codes


def test_registry_and_defaults() -> None:
    assert AUTOENCODERS.names() == ["ae", "beta_vae", "lq_ae"]
    lq = make_autoencoder("lq_ae", (3, 32, 32))
    assert isinstance(lq, LQAE) and lq.weight_decay == 0.1 and lq.quantizer.n_values == 10
    assert make_autoencoder("ae", (3, 32, 32)).weight_decay == 0.0
    assert make_autoencoder("beta_vae(beta=2)", (3, 32, 32)).beta == 2.0
    groups = lq.param_groups()
    decayed = {id(p) for p in groups[0]["params"]}
    assert id(lq.quantizer.values) not in decayed  # codebooks and biases are not decayed
    assert all(p.ndim > 1 for p in groups[0]["params"])
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(
        p.numel() for p in lq.parameters()
    )


def test_lq_ae_trains_and_codes_stay_in_codebook() -> None:
    torch.set_num_threads(1)
    data = make_shapes(128, size=16, seed=0)
    torch.manual_seed(0)
    model = make_autoencoder("lq_ae(n_values=4)", (3, 16, 16), n_latents=4)
    before = reconstruction_mse(model, data.images)
    log = train_autoencoder(model, data.images, epochs=3, batch_size=32, seed=0)
    assert len(log.losses) == 3 and log.losses[-1] < log.losses[0]
    assert reconstruction_mse(model, data.images) < before
    codes = encode(model, data.images)
    assert codes.dtype == np.int64 and codes.min() >= 0 and codes.max() < 4
    out = model.quantizer(model.encoder(torch.as_tensor(data.images[:8])))
    book = model.quantizer.values.detach()
    for j in range(4):
        assert torch.isin(out.hat[:, j].detach(), book[j]).all()


def test_training_is_deterministic() -> None:
    data = make_shapes(64, size=16, seed=0)
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        model = make_autoencoder("beta_vae", (3, 16, 16), n_latents=3)
        runs.append(train_autoencoder(model, data.images, epochs=1, batch_size=32, seed=1).losses)
    assert runs[0] == runs[1]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="n_values must be >= 2, got 1"):
        make_autoencoder("lq_ae(n_values=1)", (3, 32, 32))
    with pytest.raises(
        ValueError, match="autoencoder must be one of ae, beta_vae, lq_ae; got 'vq'"
    ):
        make_autoencoder("vq", (3, 32, 32))
    with pytest.raises(ValueError, match="unknown hyper-parameter 'beta'"):
        make_autoencoder("ae(beta=2)", (3, 32, 32))
    with pytest.raises(ValueError, match="power of two >= 16, got 24"):
        make_autoencoder("ae", (3, 24, 24))
    model = make_autoencoder("ae", (3, 16, 16))
    bad = np.zeros((2, 3, 16, 16), dtype=np.float32)
    bad[0, 1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="images must be finite"):
        train_autoencoder(model, bad, epochs=1)
    with pytest.raises(ValueError, match=r"images must have shape \(batch, \(3, 16, 16\)\)"):
        model.loss(torch.zeros(2, 1, 16, 16))
