"""Train a :class:`~embedlab.disentangle.autoencoders.DisentanglingAE` on images and read out
its code and reconstruction error."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from embedlab._validation import check_finite, check_int, check_positive_float
from embedlab.disentangle.autoencoders import DisentanglingAE

__all__ = ["TrainLog", "encode", "reconstruction_mse", "train_autoencoder"]


@dataclass
class TrainLog:
    """Mean training loss per epoch and the wall time."""

    losses: list[float] = field(default_factory=list)
    train_s: float = 0.0


def _images(name: str, images: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (n, channels, size, size), got {tuple(x.shape)}")
    check_finite(name, x)
    return x


def train_autoencoder(
    model: DisentanglingAE,
    images: np.ndarray | torch.Tensor,
    *,
    epochs: int = 20,
    batch_size: int = 64,
    lr: float = 1e-3,
    clip: float = 1.0,
    seed: int = 0,
) -> TrainLog:
    """AdamW on ``model.loss`` over shuffled mini-batches, as in Hsu et al.'s code: learning
    rate 1e-3, gradients clipped element-wise to ``[-clip, clip]``, weight decay
    ``model.weight_decay`` on weights only (see :meth:`DisentanglingAE.param_groups`).

    Args:
        model: the autoencoder (trained in place).
        images: ``(n, channels, size, size)`` finite values in [0, 1].
        epochs: passes over the data.
        batch_size: samples per step.
        lr: learning rate.
        clip: element-wise gradient clip.
        seed: shuffling and sampling noise.
    """
    import time

    x = _images("images", images)
    epochs = check_int("epochs", epochs, min_value=1)
    batch_size = check_int("batch_size", batch_size, min_value=1)
    lr = check_positive_float("lr", lr)
    clip = check_positive_float("clip", clip)
    gen = torch.Generator().manual_seed(check_int("seed", seed, min_value=0))
    opt = torch.optim.AdamW(model.param_groups(), lr=lr)
    params = [p for p in model.parameters() if p.requires_grad]
    log = TrainLog()
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=gen)
        total, count = 0.0, 0
        for lo in range(0, x.shape[0], batch_size):
            batch = x[order[lo : lo + batch_size]]
            loss, _ = model.loss(batch, generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            torch.nn.utils.clip_grad_value_(params, clip)
            opt.step()
            total += float(loss.detach()) * batch.shape[0]
            count += batch.shape[0]
        log.losses.append(total / count)
    model.eval()
    log.train_s = time.perf_counter() - start
    return log


@torch.no_grad()
def encode(
    model: DisentanglingAE, images: np.ndarray | torch.Tensor, *, batch_size: int = 512
) -> np.ndarray:
    """``(n, n_latents)`` the model's code (int64 indices for quantised models)."""
    x = _images("images", images)
    model.eval()
    parts = [model.codes(x[lo : lo + batch_size]) for lo in range(0, x.shape[0], batch_size)]
    return torch.cat(parts).numpy()


@torch.no_grad()
def reconstruction_mse(
    model: DisentanglingAE, images: np.ndarray | torch.Tensor, *, batch_size: int = 512
) -> float:
    """Mean squared pixel error of the deterministic reconstruction."""
    x = _images("images", images)
    model.eval()
    total = 0.0
    for lo in range(0, x.shape[0], batch_size):
        batch = x[lo : lo + batch_size]
        total += float(((model.reconstruct(batch) - batch) ** 2).sum())
    return total / x.numel()
