"""Disentangled representation learning: latent quantization (Hsu et al. 2023) and its
baselines (autoencoder, β-VAE), trained on images with known factors and scored with
:func:`embedlab.analysis.infomec`.

>>> from embedlab.disentangle import make_autoencoder
>>> model = make_autoencoder("lq_ae", (3, 32, 32), n_latents=10)  # doctest: +SKIP
"""

from __future__ import annotations

from embedlab.disentangle.autoencoders import (
    AE,
    AUTOENCODERS,
    LQAE,
    BetaVAE,
    DisentanglingAE,
    make_autoencoder,
)
from embedlab.disentangle.latent_quantization import (
    LatentQuantizer,
    Quantized,
    commitment_loss,
    quantization_loss,
)
from embedlab.disentangle.training import (
    TrainLog,
    encode,
    reconstruction_mse,
    train_autoencoder,
)

__all__ = [
    "AE",
    "AUTOENCODERS",
    "LQAE",
    "BetaVAE",
    "DisentanglingAE",
    "LatentQuantizer",
    "Quantized",
    "TrainLog",
    "commitment_loss",
    "encode",
    "make_autoencoder",
    "quantization_loss",
    "reconstruction_mse",
    "train_autoencoder",
]
