"""The Bernoulli binary autoencoder of Binary Latent Diffusion, over dense vectors.

Paper: Wang et al., "Binary Latent Diffusion", CVPR 2023 (arXiv:2304.04820). The paper's
autoencoder maps an image to binary latents with a Bernoulli encoding distribution and a
decoder maps the bits back; a Bernoulli diffusion model then learns the prior over the bits
to *generate* images. Only the autoencoder is implemented here, as a compact vector code;
the diffusion generator (and the paper's image encoder/decoder, perceptual and adversarial
losses) is out of scope.

Model, for a vector ``x (dim,)``::

    logits l = E(x)                       # encoder: (dim,) -> (bits,)
    p = sigmoid(l)                        # Bernoulli probability of each bit
    b ~ Bernoulli(p)   (training)         # b = 1[p > 0.5] at inference (deterministic)
    b_st = b + p - stopgrad(p)            # straight-through: forward b, gradient of p
    x_hat = D(2 b_st - 1)                 # decoder: (bits,) -> (dim,)

``E`` and ``D`` are residual MLP blocks (:class:`embedlab.index._bebr_model.ResidualMLP`: a
linear map plus a residual two-layer MLP; the paper's decoder starts with a per-bit
embedding, the same linear map of the bits). Training minimises the reconstruction loss
(``1 - cos(x_hat, x)`` or ``|x_hat - x|^2``) plus ``code_weight * mean(p (1 - p))`` (the
reference code's "code loss", which pushes the probabilities to 0 or 1; weight 0 there and
by default here).

Initialisation: ``E`` starts as a random (semi-)orthogonal projection whose outputs are
centred and scaled on the training data (logit std ``init_scale``), ``D`` as its transpose,
so the untrained code is the sign of centred random projections; training starts from
that data-independent baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from embedlab.index._bebr_model import ResidualMLP

__all__ = ["BAENet", "BAETrainConfig", "bae_loss", "encode_logits", "train_bae"]

ReconLoss = Literal["cos", "mse"]


class BAENet(nn.Module):
    """Bernoulli binary autoencoder: ``(batch, dim)`` -> ``bits`` logits -> ``(batch, dim)``.

    Args:
        dim: input width.
        bits: code length.
        hidden: hidden width of the encoder's and decoder's residual MLP.
    """

    def __init__(self, dim: int, bits: int, hidden: int) -> None:
        super().__init__()
        self.dim, self.bits = dim, bits
        self.encoder = ResidualMLP(dim, bits, hidden)
        self.decoder = ResidualMLP(bits, dim, hidden)
        q = torch.empty(max(dim, bits), min(dim, bits))
        nn.init.orthogonal_(q)
        rot = q if dim >= bits else q.T  # (dim, bits), orthonormal columns or rows
        with torch.no_grad():
            self.encoder.proj.weight.copy_(rot.T)
            self.decoder.proj.weight.copy_(rot * bits**-0.5)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder logits ``(batch, bits)`` of ``x (batch, dim)``; ``p = sigmoid(logits)``."""
        out: torch.Tensor = self.encoder(x)
        return out

    def decode(self, bits: torch.Tensor) -> torch.Tensor:
        """Reconstructions ``(batch, dim)`` of 0/1 codes ``bits (batch, bits)``."""
        out: torch.Tensor = self.decoder(2.0 * bits - 1.0)
        return out

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: ``(x_hat (batch, dim), p (batch, bits))`` with sampled bits.

        The bits are drawn from ``Bernoulli(p)``; the straight-through estimator passes the
        gradient of ``p`` through the sample.
        """
        p = torch.sigmoid(self.logits(x))
        b = torch.bernoulli(p.detach(), generator=generator)
        b_st = b + p - p.detach()
        return self.decode(b_st), p

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic codes ``(batch, bits)`` bool: ``p > 0.5``, i.e. ``logit > 0``."""
        return self.logits(x) > 0


@dataclass(frozen=True)
class BAETrainConfig:
    """Hyper-parameters of :func:`train_bae` (see the module docstring for the loss)."""

    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    loss: ReconLoss = "cos"
    code_weight: float = 0.0
    init_scale: float = 2.0
    max_train: int = 50_000
    seed: int = 0


@dataclass
class TrainLog:
    """Mean loss of each epoch."""

    losses: list[float] = field(default_factory=list)


def bae_loss(
    x: torch.Tensor, x_hat: torch.Tensor, p: torch.Tensor, cfg: BAETrainConfig
) -> torch.Tensor:
    """Reconstruction loss plus ``code_weight * mean(p (1 - p))`` on one batch.

    Args:
        x: input vectors ``(batch, dim)``.
        x_hat: reconstructions ``(batch, dim)``.
        p: bit probabilities ``(batch, bits)``.
        cfg: loss kind and weight.
    """
    if cfg.loss == "cos":
        recon = (1.0 - F.cosine_similarity(x_hat, x, dim=-1, eps=1e-8)).mean()
    else:
        recon = ((x_hat - x) ** 2).sum(dim=-1).mean()
    if cfg.code_weight:
        recon = recon + cfg.code_weight * (p * (1.0 - p)).mean()
    return recon


@torch.no_grad()
def _init_from_data(net: BAENet, data: torch.Tensor, scale: float) -> None:
    """Centre the encoder's projections on ``data`` and give each logit std ``scale``."""
    proj = net.encoder.proj
    h = data @ proj.weight.T  # (n, bits)
    mean, std = h.mean(dim=0), h.std(dim=0)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # constant data: no rescale
    factor = scale / std
    proj.weight.mul_(factor[:, None])
    proj.bias.copy_(-mean * factor)


def train_bae(
    net: BAENet,
    x: np.ndarray,
    cfg: BAETrainConfig,
    *,
    on_epoch: Callable[[int, float], None] | None = None,
) -> TrainLog:
    """Train ``net`` on ``x (n, dim)`` float32 (seeded and deterministic).

    At most ``cfg.max_train`` rows (a seeded sample) are used.
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    if x.shape[0] > cfg.max_train:
        x = x[np.sort(rng.choice(x.shape[0], cfg.max_train, replace=False))]
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    n = data.shape[0]
    _init_from_data(net, data, cfg.init_scale)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    bs = min(cfg.batch_size, n)
    log = TrainLog()
    net.train()
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n - bs + 1, bs):  # the ragged last batch is dropped
            xb = data[perm[start : start + bs]]
            x_hat, p = net(xb, generator=gen)
            loss = bae_loss(xb, x_hat, p, cfg)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach()) * xb.shape[0]
        log.losses.append(total / max(bs * (n // bs), 1))
        if on_epoch is not None:
            on_epoch(epoch, log.losses[-1])
    net.eval()
    return log


def encode_logits(net: BAENet, x: np.ndarray, *, batch_size: int = 8192) -> np.ndarray:
    """Encoder logits ``(n, bits)`` float32 of ``x (n, dim)``."""
    out = np.empty((x.shape[0], net.bits), dtype=np.float32)
    net.eval()
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size], np.float32))
            out[start : start + xb.shape[0]] = net.logits(xb).numpy()
    return out
