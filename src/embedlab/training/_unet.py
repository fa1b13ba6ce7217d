"""A tiny time-conditioned U-Net for 28x28 (padded to 32x32) single-channel images.

Small enough to train on a CPU in minutes (about 106k parameters at ``base=8``); used by
:mod:`embedlab.training.diffusion` as the DDPM noise predictor and, with its skip connections
zeroed, as a same-size autoencoder baseline. Every named block (``BLOCKS``) is a module
attribute so forward hooks can read its output.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from embedlab._validation import check_int

__all__ = ["BLOCKS", "TinyUNet", "timestep_embedding"]

#: Names of the blocks whose outputs are features, in forward order.
BLOCKS: tuple[str, ...] = ("down1", "down2", "down3", "mid", "up3", "up2", "up1")


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer steps (Transformer / DDPM style).

    Args:
        t: ``(batch,)`` integer steps.
        dim: embedding width (even).

    Returns:
        ``(batch, dim)`` float tensor.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class _ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, plus a per-channel shift from the step embedding."""

    def __init__(self, c_in: int, c_out: int, t_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(math.gcd(8, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb = nn.Linear(t_dim, c_out)
        self.norm2 = nn.GroupNorm(math.gcd(8, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        out: torch.Tensor = h + self.skip(x)
        return out


class TinyUNet(nn.Module):
    """Three-level U-Net: 32x32 -> 16x16 -> 8x8 and back, one residual block per level.

    Args:
        base: channels of the top level; the levels have ``base, 2 base, 4 base`` channels.
        skips: ``False`` zeroes the encoder-to-decoder skip connections (same parameters,
            so a same-size autoencoder must pass everything through the 8x8 bottleneck).

    Input ``(batch, 1, 28, 28)`` images and ``(batch,)`` integer steps; output
    ``(batch, 1, 28, 28)``.

    Example:
        >>> net = TinyUNet(base=8)
        >>> net(torch.zeros(2, 1, 28, 28), torch.tensor([0, 5])).shape
        torch.Size([2, 1, 28, 28])
    """

    def __init__(self, *, base: int = 8, skips: bool = True) -> None:
        super().__init__()
        self.base = check_int("base", base, min_value=4)
        self.skips = bool(skips)
        c1, c2, c3 = base, 2 * base, 4 * base
        t_dim = 4 * base
        self.t_dim = t_dim
        self.time_mlp = nn.Sequential(nn.Linear(t_dim, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.stem = nn.Conv2d(1, c1, 3, padding=1)
        self.down1 = _ResBlock(c1, c1, t_dim)  # 32x32
        self.pool1 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.down2 = _ResBlock(c2, c2, t_dim)  # 16x16
        self.pool2 = nn.Conv2d(c2, c3, 3, stride=2, padding=1)
        self.down3 = _ResBlock(c3, c3, t_dim)  # 8x8
        self.mid = _ResBlock(c3, c3, t_dim)  # 8x8 bottleneck
        self.up3 = _ResBlock(2 * c3, c3, t_dim)  # 8x8, cat skip of down3
        self.unpool2 = nn.ConvTranspose2d(c3, c2, 4, stride=2, padding=1)
        self.up2 = _ResBlock(2 * c2, c2, t_dim)  # 16x16
        self.unpool1 = nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1)
        self.up1 = _ResBlock(2 * c1, c1, t_dim)  # 32x32
        self.head = nn.Sequential(
            nn.GroupNorm(math.gcd(8, c1), c1), nn.SiLU(), nn.Conv2d(c1, 1, 3, padding=1)
        )

    def _skip(self, h: torch.Tensor) -> torch.Tensor:
        return h if self.skips else torch.zeros_like(h)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predict ``(batch, 1, 28, 28)`` from images ``x`` and integer steps ``t`` ``(batch,)``."""
        temb = self.time_mlp(timestep_embedding(t, self.t_dim))
        h = F.pad(x, (2, 2, 2, 2))  # 28x28 -> 32x32
        h1 = self.down1(self.stem(h), temb)
        h2 = self.down2(self.pool1(h1), temb)
        h3 = self.down3(self.pool2(h2), temb)
        m = self.mid(h3, temb)
        u3 = self.up3(torch.cat([m, self._skip(h3)], dim=1), temb)
        u2 = self.up2(torch.cat([self.unpool2(u3), self._skip(h2)], dim=1), temb)
        u1 = self.up1(torch.cat([self.unpool1(u2), self._skip(h1)], dim=1), temb)
        out: torch.Tensor = self.head(u1)[:, :, 2:-2, 2:-2]
        return out
