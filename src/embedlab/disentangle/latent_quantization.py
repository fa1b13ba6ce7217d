"""Latent quantization: a separate learnable scalar codebook for every latent dimension.

Hsu, Dorrell, Whittington, Wu, Finn, "Disentanglement via Latent Quantization" (NeurIPS 2023).
Each latent dimension ``j`` has its own codebook of ``n_values`` scalars ``v_j``; a continuous
code ``z`` is quantised dimension by dimension to the nearest value, and the decoder sees the
quantised code with straight-through gradients (the encoder receives the decoder's gradient
unchanged). Two auxiliary losses, as in VQ-VAE but per scalar: the *quantization* loss pulls
the codebook values to the (stopped) encoder outputs, the *commitment* loss pulls the encoder
outputs to the (stopped) values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from embedlab._validation import check_bool, check_finite, check_int, check_positive_float

__all__ = ["LatentQuantizer", "Quantized", "commitment_loss", "quantization_loss"]


@dataclass(frozen=True)
class Quantized:
    """The quantizer's outputs for a batch.

    Args:
        continuous: ``(batch, n_latents)`` the encoder's code ``z``.
        quantized: ``(batch, n_latents)`` the nearest codebook values (carry gradient to the
            codebook only).
        hat: ``(batch, n_latents)`` equal to ``quantized`` in value, straight-through in
            gradient (``d hat / d z = I``); feed this to the decoder.
        indices: ``(batch, n_latents)`` int64 index of the chosen value per dimension.
    """

    continuous: torch.Tensor
    quantized: torch.Tensor
    hat: torch.Tensor
    indices: torch.Tensor


def quantization_loss(out: Quantized) -> torch.Tensor:
    """``mean((sg(z) - q)^2)``: moves the codebook values towards the encoder outputs."""
    return ((out.continuous.detach() - out.quantized) ** 2).mean()


def commitment_loss(out: Quantized) -> torch.Tensor:
    """``mean((z - sg(q))^2)``: moves the encoder outputs towards their chosen values."""
    return ((out.continuous - out.quantized.detach()) ** 2).mean()


class LatentQuantizer(nn.Module):
    """Per-dimension scalar codebooks with nearest-value quantisation and straight-through
    gradients (Hsu et al. 2023).

    Args:
        n_latents: number of latent dimensions (the paper uses twice the number of sources).
        n_values: size of each dimension's codebook, ``>= 2`` (the paper's default: 10).
        optimize_values: learn the codebook values (the paper's default) or keep them fixed.
        init_range: values start evenly spaced on ``[-init_range, init_range]`` (paper: 0.5).

    Example:
        >>> import torch
        >>> q = LatentQuantizer(3, n_values=5)
        >>> out = q(torch.randn(8, 3))
        >>> out.hat.shape, int(out.indices.max()) < 5
        (torch.Size([8, 3]), True)
    """

    def __init__(
        self,
        n_latents: int,
        n_values: int = 10,
        *,
        optimize_values: bool = True,
        init_range: float = 0.5,
    ) -> None:
        super().__init__()
        self.n_latents = check_int("n_latents", n_latents, min_value=1)
        self.n_values = check_int("n_values", n_values, min_value=2)
        self.optimize_values = check_bool("optimize_values", optimize_values)
        self.init_range = check_positive_float("init_range", init_range)
        grid = torch.linspace(-self.init_range, self.init_range, self.n_values)
        self.values = nn.Parameter(
            grid.repeat(self.n_latents, 1), requires_grad=self.optimize_values
        )  # (n_latents, n_values)

    def codebook(self) -> torch.Tensor:
        """``(n_latents, n_values)`` the current values of every dimension's codebook."""
        return self.values

    def forward(self, z: torch.Tensor) -> Quantized:
        """Quantise ``z`` ``(batch, n_latents)`` dimension by dimension."""
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.n_latents:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z must have shape (batch, {self.n_latents}), got {shape}")
        check_finite("z", z.detach())
        values = self.values.to(z.dtype)
        dist = (z.unsqueeze(-1) - values.unsqueeze(0)).abs()  # (batch, n_latents, n_values)
        indices = dist.argmin(dim=-1)  # (batch, n_latents)
        expanded = values.unsqueeze(0).expand(z.shape[0], -1, -1)
        quantized = expanded.gather(-1, indices.unsqueeze(-1)).squeeze(-1)
        # value exactly q (z + sg(q - z) can be 1 ulp off in float32), gradient identity to z
        hat = quantized.detach() + (z - z.detach())
        return Quantized(continuous=z, quantized=quantized, hat=hat, indices=indices)
