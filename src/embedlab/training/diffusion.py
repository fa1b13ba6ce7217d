"""Diffusion features: a small DDPM whose U-Net block outputs are image representations.

Follows "Diffusion Models Beat GANs on Image Classification" (Mukhoti et al., 2023): train a
DDPM (Ho et al., 2020: epsilon prediction, ``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)``),
then noise an image to step ``t``, run the U-Net once and pool the feature map of one block;
a linear probe on the pooled features measures how discriminative each ``(block, t)`` is.
The paper's zero-shot diffusion classifier is not this method and is not implemented.

Images are ``(n, 784)``, ``(n, 28, 28)`` or ``(n, 1, 28, 28)`` pixel values in ``[0, 1]``;
they are mapped to ``[-1, 1]`` inside.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.nn import functional as F

from embedlab._validation import check_choice, check_finite, check_int, check_positive_float
from embedlab.training._unet import BLOCKS, TinyUNet

__all__ = [
    "BLOCKS",
    "NoiseSchedule",
    "ProbeResult",
    "TinyUNet",
    "ddpm_loss",
    "diffusion_features",
    "make_schedule",
    "probe_sweep",
    "q_sample",
    "q_step",
    "train_unet",
]


@dataclass(frozen=True)
class NoiseSchedule:
    """``betas`` ``(T,)`` float64; ``alpha_bars[t] = prod_{s <= t} (1 - betas[s])``."""

    betas: torch.Tensor
    alpha_bars: torch.Tensor

    @property
    def steps(self) -> int:
        """``T``, the number of noise steps; valid steps are ``0 .. T - 1``."""
        return int(self.betas.shape[0])

    def check_step(self, t: torch.Tensor | int) -> torch.Tensor:
        """Return ``t`` as an int64 tensor after checking every step is in ``[0, T)``."""
        tt = torch.as_tensor(t)
        if tt.dtype.is_floating_point or tt.dtype == torch.bool:
            raise TypeError(f"t must be an integer step or an integer tensor, got {t!r}")
        tt = tt.long()
        bad = (tt < 0) | (tt >= self.steps)
        if bool(bad.any()):
            raise ValueError(
                f"t must be in [0, {self.steps}) (the noise schedule's steps), "
                f"got {int(tt[bad].flatten()[0])}"
            )
        return tt


def make_schedule(steps: int = 1000, kind: Literal["linear", "cosine"] = "linear") -> NoiseSchedule:
    """DDPM noise schedule: ``linear`` betas 1e-4 .. 0.02 (Ho et al.) or ``cosine``.

    ``cosine`` is Nichol & Dhariwal's ``abar(t) = cos^2((t/T + s) / (1 + s) pi/2)``, ``s = 0.008``;
    betas are clipped at 0.999. The linear betas are rescaled by ``1000 / steps``.
    """
    steps = check_int("steps", steps, min_value=1)
    check_choice("kind", kind, ("linear", "cosine"))
    if kind == "linear":
        betas = torch.linspace(1e-4 * 1000 / steps, 0.02 * 1000 / steps, steps, dtype=torch.float64)
        betas = betas.clamp(max=0.999)
    else:
        s = 0.008
        grid = torch.arange(steps + 1, dtype=torch.float64) / steps
        f = torch.cos((grid + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return NoiseSchedule(betas=betas, alpha_bars=torch.cumprod(1 - betas, dim=0))


def _images(name: str, x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``(n, 1, 28, 28)`` float32 in ``[-1, 1]`` from pixel values in ``[0, 1]``."""
    xt = torch.as_tensor(x)
    if not xt.dtype.is_floating_point:
        raise TypeError(f"{name} must hold floating-point pixel values in [0, 1], got {xt.dtype}")
    check_finite(name, xt)
    n = xt.shape[0] if xt.ndim else 0
    if xt.numel() != n * 784 or n == 0:
        raise ValueError(
            f"{name} must have shape (n, 784), (n, 28, 28) or (n, 1, 28, 28) with n >= 1, "
            f"got {tuple(xt.shape)}"
        )
    return xt.reshape(n, 1, 28, 28).float() * 2 - 1


def _gather(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-sample schedule values ``(batch, 1, 1, 1)`` in the dtype of ``like``."""
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] not in (1, like.shape[0])):
        raise ValueError(
            f"t must be one step or one step per sample ({like.shape[0]}), "
            f"got shape {tuple(t.shape)}"
        )
    t = t.reshape(-1).expand(like.shape[0])
    return values[t].to(like.dtype).reshape(-1, *([1] * (like.ndim - 1)))


def q_sample(
    x0: torch.Tensor, t: torch.Tensor | int, schedule: NoiseSchedule, noise: torch.Tensor
) -> torch.Tensor:
    """Closed-form forward process: ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``.

    Args:
        x0: ``(batch, ...)`` clean data (model scale).
        t: one step or ``(batch,)`` steps in ``[0, T)``.
        noise: standard normal, shape of ``x0``.
    """
    check_finite("x0", x0)
    ab = _gather(schedule.alpha_bars, schedule.check_step(t), x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def q_step(
    x_prev: torch.Tensor, t: torch.Tensor | int, schedule: NoiseSchedule, noise: torch.Tensor
) -> torch.Tensor:
    """One forward step ``q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)``.

    Chaining ``q_step`` for steps ``0 .. t`` starting from ``x0`` gives ``q_sample(x0, t)`` in
    distribution (``x_{-1} = x0``, i.e. step 0 already adds noise ``beta_0``).
    """
    check_finite("x_prev", x_prev)
    b = _gather(schedule.betas, schedule.check_step(t), x_prev)
    return (1 - b).sqrt() * x_prev + b.sqrt() * noise


def ddpm_loss(
    model: torch.nn.Module, x0: torch.Tensor, schedule: NoiseSchedule, generator: torch.Generator
) -> torch.Tensor:
    """Epsilon-prediction loss ``E_{t, eps} ||eps - model(x_t, t)||^2`` (Ho et al.'s L_simple).

    Args:
        x0: ``(batch, 1, 28, 28)`` clean images in ``[-1, 1]``.
    """
    t = torch.randint(0, schedule.steps, (x0.shape[0],), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    pred = model(q_sample(x0, t, schedule, noise), t)
    return F.mse_loss(pred, noise)


def train_unet(
    x: torch.Tensor | np.ndarray,
    *,
    objective: Literal["ddpm", "autoencoder"] = "ddpm",
    schedule: NoiseSchedule | None = None,
    base: int = 8,
    epochs: int = 3,
    max_seconds: float = math.inf,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
) -> tuple[TinyUNet, list[float]]:
    """Train a :class:`TinyUNet` as a DDPM noise predictor or as a same-size autoencoder.

    ``"autoencoder"`` uses the same network with its skip connections zeroed, step 0 and
    loss ``||model(x0) - x0||^2``; training stops after ``epochs`` or ``max_seconds`` (checked
    after each batch), so both objectives can get the same time.

    Returns:
        The model (in eval mode) and the mean loss of each (possibly partial) epoch.
    """
    check_choice("objective", objective, ("ddpm", "autoencoder"))
    epochs = check_int("epochs", epochs, min_value=1)
    batch_size = check_int("batch_size", batch_size, min_value=1)
    check_positive_float("lr", lr)
    if max_seconds != math.inf:
        check_positive_float("max_seconds", max_seconds)
    images = _images("x", x)
    sched = schedule if schedule is not None else make_schedule()
    torch.manual_seed(seed)
    model = TinyUNet(base=base, skips=objective == "ddpm")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    history: list[float] = []
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(images.shape[0], generator=gen)
        total, count = 0.0, 0
        for lo in range(0, len(perm), batch_size):
            xb = images[perm[lo : lo + batch_size]]
            if objective == "ddpm":
                loss = ddpm_loss(model, xb, sched, gen)
            else:
                zero = torch.zeros(xb.shape[0], dtype=torch.long)
                loss = F.mse_loss(model(xb, zero), xb)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total, count = total + loss.item() * len(xb), count + len(xb)
            if time.perf_counter() - start > max_seconds:
                break
        history.append(total / max(count, 1))
        if time.perf_counter() - start > max_seconds:
            break
    model.eval()
    return model, history


def diffusion_features(
    model: TinyUNet,
    x: torch.Tensor | np.ndarray,
    t: int,
    blocks: tuple[str, ...] | list[str] = BLOCKS,
    *,
    schedule: NoiseSchedule | None = None,
    pool: int = 1,
    seed: int = 0,
    batch_size: int = 512,
) -> dict[str, np.ndarray]:
    """Pooled output of each U-Net block for images noised to step ``t`` (forward hooks).

    Args:
        model: a trained :class:`TinyUNet`.
        x: ``(n, 784)`` / ``(n, 28, 28)`` / ``(n, 1, 28, 28)`` pixels in ``[0, 1]``.
        t: noise step in ``[0, T)``; ``x_t ~ q(x_t | x)`` with a seeded noise draw.
        blocks: names from ``BLOCKS``.
        pool: adaptive average pooling to ``pool x pool`` per channel (1 = global average).

    Returns:
        ``{block: (n, channels * pool * pool) float32}``.
    """
    sched = schedule if schedule is not None else make_schedule()
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
        raise TypeError(f"t must be an integer noise step, got {t!r}")
    sched.check_step(int(t))
    blocks = tuple(blocks)
    if not blocks:
        raise ValueError("blocks must name at least one block, got ()")
    for b in blocks:
        check_choice("blocks", b, BLOCKS)
    pool = check_int("pool", pool, min_value=1)
    batch_size = check_int("batch_size", batch_size, min_value=1)
    images = _images("x", x)
    gen = torch.Generator().manual_seed(seed)
    captured: dict[str, torch.Tensor] = {}

    def hook(name: str) -> torch.utils.hooks.RemovableHandle:
        def save(_m: torch.nn.Module, _i: object, out: torch.Tensor) -> None:
            captured[name] = F.adaptive_avg_pool2d(out, pool).flatten(1)

        module: torch.nn.Module = getattr(model, name)
        return module.register_forward_hook(save)

    handles = [hook(b) for b in blocks]
    chunks: dict[str, list[torch.Tensor]] = {b: [] for b in blocks}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for lo in range(0, images.shape[0], batch_size):
                xb = images[lo : lo + batch_size]
                tb = torch.full((xb.shape[0],), int(t), dtype=torch.long)
                xt = q_sample(xb, tb, sched, torch.randn(xb.shape, generator=gen))
                model(xt, tb)
                for b in blocks:
                    chunks[b].append(captured[b])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return {b: torch.cat(chunks[b]).numpy().astype(np.float32) for b in blocks}


@dataclass(frozen=True)
class ProbeResult:
    """Linear-probe test accuracy of the features of one ``(block, t)``."""

    block: str
    t: int
    dim: int
    accuracy: float


def probe_sweep(
    model: TinyUNet,
    x_train: torch.Tensor | np.ndarray,
    y_train: np.ndarray,
    x_test: torch.Tensor | np.ndarray,
    y_test: np.ndarray,
    *,
    steps: tuple[int, ...] | list[int] = (10, 50, 100, 250, 500),
    blocks: tuple[str, ...] | list[str] = BLOCKS,
    schedule: NoiseSchedule | None = None,
    pool: int = 1,
    seed: int = 0,
    max_iter: int = 500,
) -> list[ProbeResult]:
    """Linear probe (standardised features, sklearn ``LogisticRegression``) on every ``(block, t)``.

    Returns:
        One :class:`ProbeResult` per pair, best accuracy first.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not steps:
        raise ValueError("steps must hold at least one noise step, got ()")
    results: list[ProbeResult] = []
    for t in steps:
        f_tr = diffusion_features(
            model, x_train, t, blocks, schedule=schedule, pool=pool, seed=seed
        )
        f_te = diffusion_features(
            model, x_test, t, blocks, schedule=schedule, pool=pool, seed=seed + 1
        )
        for b in blocks:
            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
            clf.fit(f_tr[b], y_train)
            acc = float(clf.score(f_te[b], y_test))
            results.append(ProbeResult(block=b, t=int(t), dim=f_tr[b].shape[1], accuracy=acc))
    return sorted(results, key=lambda r: -r.accuracy)
