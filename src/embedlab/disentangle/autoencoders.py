"""Autoencoders for disentanglement: plain AE, quantised-latent AE (QLAE) and a β-VAE.

Small conv encoder / decoder for square RGB (or grey) images whose side is a power of two
``>= 16`` (e.g. 32x32 or 64x64). The decoder outputs logits; reconstruction is the
per-pixel binary cross-entropy (images in [0, 1]), as in Hsu et al.'s code.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from embedlab._registry import Registry, parse_spec
from embedlab._validation import (
    check_choice,
    check_finite,
    check_int,
    check_keywords,
    check_positive_float,
)
from embedlab.disentangle.latent_quantization import (
    LatentQuantizer,
    Quantized,
    commitment_loss,
    quantization_loss,
)

__all__ = ["AE", "AUTOENCODERS", "LQAE", "BetaVAE", "DisentanglingAE", "make_autoencoder"]

AUTOENCODERS: Registry[type[DisentanglingAE]] = Registry("autoencoder")


def _check_shape(in_shape: tuple[int, ...]) -> tuple[int, int]:
    if len(in_shape) != 3 or in_shape[1] != in_shape[2]:
        raise ValueError(f"in_shape must be (channels, size, size), got {tuple(in_shape)}")
    channels, size = check_int("channels", in_shape[0], min_value=1), in_shape[1]
    if size < 16 or size & (size - 1):
        raise ValueError(f"image size must be a power of two >= 16, got {size}")
    return channels, size


class _Encoder(nn.Sequential):
    def __init__(self, in_ch: int, size: int, width: int, hidden: int, out: int) -> None:
        layers: list[nn.Module] = []
        ch = in_ch
        for _ in range(int(math.log2(size // 4))):  # halve down to 4x4
            layers += [nn.Conv2d(ch, width, 4, stride=2, padding=1), nn.ReLU()]
            ch = width
        layers += [nn.Flatten(), nn.Linear(width * 16, hidden), nn.ReLU(), nn.Linear(hidden, out)]
        super().__init__(*layers)


class _Decoder(nn.Sequential):
    def __init__(self, n_latents: int, out_ch: int, size: int, width: int, hidden: int) -> None:
        layers: list[nn.Module] = [
            nn.Linear(n_latents, hidden),
            nn.ReLU(),
            nn.Linear(hidden, width * 16),
            nn.ReLU(),
            nn.Unflatten(1, (width, 4, 4)),
        ]
        n_up = int(math.log2(size // 4))
        for i in range(n_up):  # double up to size x size; the last layer emits logits
            last = i == n_up - 1
            layers.append(nn.ConvTranspose2d(width, out_ch if last else width, 4, 2, 1))
            if not last:
                layers.append(nn.ReLU())
        super().__init__(*layers)


class DisentanglingAE(nn.Module):
    """Base class: conv encoder -> latent layer -> conv decoder, trained by :meth:`loss`.

    Args:
        in_shape: ``(channels, size, size)`` of the images.
        n_latents: latent dimensions (the paper: twice the number of sources).
        width: conv channels.
        hidden: units of the dense layer on each side of the latent.
        weight_decay: AdamW decay of the encoder / decoder weights (not biases, not
            codebooks); ``None`` = the method's default (:attr:`default_weight_decay`).
    """

    name: ClassVar[str] = ""
    discrete_codes: ClassVar[bool] = False
    default_weight_decay: ClassVar[float] = 0.0

    def __init__(
        self,
        in_shape: tuple[int, ...],
        n_latents: int = 10,
        *,
        width: int = 32,
        hidden: int = 128,
        weight_decay: float | None = None,
    ) -> None:
        super().__init__()
        channels, size = _check_shape(tuple(in_shape))
        self.in_shape = (channels, size, size)
        self.n_latents = check_int("n_latents", n_latents, min_value=1)
        self.width = check_int("width", width, min_value=1)
        self.hidden = check_int("hidden", hidden, min_value=1)
        wd = self.default_weight_decay if weight_decay is None else weight_decay
        self.weight_decay = check_positive_float("weight_decay", wd, strict=False)
        self.encoder = _Encoder(channels, size, width, hidden, self._encoder_out())
        self.decoder = _Decoder(n_latents, channels, size, width, hidden)

    def _encoder_out(self) -> int:
        return self.n_latents

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.encoder(x)
        return out

    def hyper_parameters(self) -> dict[str, Any]:
        """The settings that change results (for bench records)."""
        return {
            "n_latents": self.n_latents,
            "width": self.width,
            "hidden": self.hidden,
            "weight_decay": self.weight_decay,
        }

    def _check_images(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != self.in_shape:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"images must have shape (batch, {self.in_shape}), got {shape}")
        check_finite("images", x)

    def _latent(
        self, pre: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(decoder input, extra loss)`` from the encoder output."""
        return pre, pre.new_zeros(())

    def loss(
        self, x: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss of a batch ``(batch, channels, size, size)`` in [0, 1] and its parts."""
        self._check_images(x)
        z, extra = self._latent(self._encode(x), generator)
        bce = F.binary_cross_entropy_with_logits(self.decoder(z), x)
        return bce + extra, {"bce": float(bce.detach()), "extra": float(extra.detach())}

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_latents)`` the code scored by InfoMEC (deterministic)."""
        self._check_images(x)
        return self._encode(x)[:, : self.n_latents]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, channels, size, size)`` reconstructed pixel values in [0, 1]."""
        self._check_images(x)
        return torch.sigmoid(self.decoder(self._eval_latent(self._encode(x))))

    def _eval_latent(self, pre: torch.Tensor) -> torch.Tensor:
        return pre

    def param_groups(self) -> list[dict[str, Any]]:
        """AdamW groups: weight matrices / kernels decayed, biases and codebooks not."""
        decay: list[nn.Parameter] = []
        plain: list[nn.Parameter] = []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            (decay if p.ndim > 1 and not name.startswith("quantizer.") else plain).append(p)
        return [
            {"params": decay, "weight_decay": self.weight_decay},
            {"params": plain, "weight_decay": 0.0},
        ]


@AUTOENCODERS.register("ae")
class AE(DisentanglingAE):
    """Plain autoencoder with a continuous code (the paper's AE baseline: no weight decay).

    Example:
        >>> import torch
        >>> m = AE((3, 16, 16), n_latents=4)
        >>> m.codes(torch.rand(2, 3, 16, 16)).shape
        torch.Size([2, 4])
    """

    name = "ae"


@AUTOENCODERS.register("lq_ae")
class LQAE(DisentanglingAE):
    """Quantised-latent autoencoder (QLAE, Hsu et al. 2023).

    Per-dimension learnable scalar codebooks, straight-through decoding, quantization +
    commitment losses (0.01 each) and the paper's high weight decay, 0.1 (AdamW,
    decoupled, on weights only).

    Args:
        n_values: codebook size per latent dimension, ``>= 2`` (paper: 10).
        quantization_weight: weight of ``mean((sg(z) - q)^2)``.
        commitment_weight: weight of ``mean((z - sg(q))^2)``.
        (others as :class:`DisentanglingAE`)

    Example:
        >>> import torch
        >>> m = LQAE((3, 16, 16), n_latents=4, n_values=5)
        >>> m.codes(torch.rand(2, 3, 16, 16)).dtype
        torch.int64
    """

    name = "lq_ae"
    discrete_codes = True
    default_weight_decay = 0.1

    def __init__(
        self,
        in_shape: tuple[int, ...],
        n_latents: int = 10,
        *,
        n_values: int = 10,
        quantization_weight: float = 0.01,
        commitment_weight: float = 0.01,
        width: int = 32,
        hidden: int = 128,
        weight_decay: float | None = None,
    ) -> None:
        super().__init__(in_shape, n_latents, width=width, hidden=hidden, weight_decay=weight_decay)
        self.quantizer = LatentQuantizer(n_latents, n_values)
        self.quantization_weight = check_positive_float(
            "quantization_weight", quantization_weight, strict=False
        )
        self.commitment_weight = check_positive_float(
            "commitment_weight", commitment_weight, strict=False
        )

    def _quantize(self, pre: torch.Tensor) -> Quantized:
        out: Quantized = self.quantizer(pre)
        return out

    def hyper_parameters(self) -> dict[str, Any]:
        """The settings that change results (for bench records)."""
        return {
            **super().hyper_parameters(),
            "n_values": self.quantizer.n_values,
            "quantization_weight": self.quantization_weight,
            "commitment_weight": self.commitment_weight,
        }

    def _latent(
        self, pre: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self._quantize(pre)
        extra = self.quantization_weight * quantization_loss(out)
        return out.hat, extra + self.commitment_weight * commitment_loss(out)

    def _eval_latent(self, pre: torch.Tensor) -> torch.Tensor:
        return self._quantize(pre).quantized

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_latents)`` int64 codebook index chosen in every dimension."""
        self._check_images(x)
        return self._quantize(self._encode(x)).indices


@AUTOENCODERS.register("beta_vae")
class BetaVAE(DisentanglingAE):
    """β-VAE (Higgins et al. 2017) with a diagonal Gaussian posterior.

    Loss: per-pixel BCE + ``beta * KL / n_pixels`` (the per-image sum of BCE + β KL,
    divided by the pixel count).
    The code scored is the posterior mean.

    Args:
        beta: KL weight, ``> 0`` (default 4).
        (others as :class:`DisentanglingAE`)
    """

    name = "beta_vae"

    def __init__(
        self,
        in_shape: tuple[int, ...],
        n_latents: int = 10,
        *,
        beta: float = 4.0,
        width: int = 32,
        hidden: int = 128,
        weight_decay: float | None = None,
    ) -> None:
        checked_beta = check_positive_float("beta", beta)
        super().__init__(in_shape, n_latents, width=width, hidden=hidden, weight_decay=weight_decay)
        self.beta = checked_beta

    def _encoder_out(self) -> int:
        return 2 * self.n_latents  # (mean, pre-softplus scale)

    def hyper_parameters(self) -> dict[str, Any]:
        """The settings that change results (for bench records)."""
        return {**super().hyper_parameters(), "beta": self.beta}

    def _latent(
        self, pre: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mu, raw = pre[:, : self.n_latents], pre[:, self.n_latents :]
        sigma = F.softplus(raw) + 1e-4
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        kl = (-torch.log(sigma) + 0.5 * (mu**2 + sigma**2 - 1.0)).sum(dim=1).mean()
        n_pixels = math.prod(self.in_shape)
        return mu + sigma * eps, self.beta * kl / n_pixels

    def _eval_latent(self, pre: torch.Tensor) -> torch.Tensor:
        return pre[:, : self.n_latents]


def make_autoencoder(
    spec: str, in_shape: tuple[int, ...], *, n_latents: int = 10, **kwargs: Any
) -> DisentanglingAE:
    """Build an autoencoder from a spec: ``"ae"``, ``"lq_ae(n_values=10)"``,
    ``"beta_vae(beta=4)"``. The spec's ``n_latents`` (if any) overrides ``n_latents``.

    Example:
        >>> make_autoencoder("lq_ae(n_values=6)", (3, 32, 32), n_latents=8).quantizer.n_values
        6
    """
    name, spec_kwargs = parse_spec(spec)
    cls = AUTOENCODERS.get(check_choice("autoencoder", name, AUTOENCODERS.names()))
    merged = {"n_latents": n_latents, **spec_kwargs, **kwargs}
    valid = [k for k in inspect.signature(cls.__init__).parameters if k not in ("self", "in_shape")]
    check_keywords(f"autoencoder {name!r}", merged, valid)
    return cls(in_shape, **merged)
