"""Small image encoders for metric learning: a CNN for 28x28 MNIST and an MLP for 8x8 digits.

Both map ``(batch, channels, height, width)`` images (or already flat ``(batch, features)``
rows for the MLP) to ``(batch, dim)`` embeddings, are seeded at construction, and expose the
embedding read out after each block (``forward_layers``) for layer-wise losses such as
Starbucks (2D Matryoshka) and MI-Mix: block ``l`` is pooled and mapped to ``dim`` by its own
linear exit head; the last entry is ``forward(x)`` itself.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from embedlab._validation import check_choice, check_int

__all__ = ["ENCODERS", "ConvEncoder", "MLPEncoder", "make_encoder"]


def _seeded_init(module: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            bound = (6.0 / fan_in) ** 0.5  # He-uniform for ReLU nets
            with torch.no_grad():
                m.weight.uniform_(-bound, bound, generator=gen)
                if m.bias is not None:
                    m.bias.zero_()


class ConvEncoder(nn.Module):
    """Two conv blocks (3x3 conv, ReLU, 2x2 max-pool) and a two-layer head to ``dim``.

    Args:
        dim: embedding size.
        in_channels: image channels.
        image_size: height = width of the input (28 for MNIST; must be divisible by 4).
        width: channels of the first block (the second has ``2 * width``).
        hidden: units of the hidden fully connected layer.
        seed: weight initialisation.

    Example:
        >>> enc = ConvEncoder(dim=32)
        >>> enc(torch.zeros(5, 1, 28, 28)).shape
        torch.Size([5, 32])
    """

    def __init__(
        self,
        dim: int = 64,
        *,
        in_channels: int = 1,
        image_size: int = 28,
        width: int = 16,
        hidden: int = 128,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, min_value=1)
        check_int("in_channels", in_channels, min_value=1)
        size = check_int("image_size", image_size, min_value=4)
        if size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {image_size}")
        w = check_int("width", width, min_value=1)
        h = check_int("hidden", hidden, min_value=1)
        self.in_shape = (in_channels, size, size)
        self.block1 = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.block2 = nn.Sequential(nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(nn.Flatten(), nn.Linear(2 * w * (size // 4) ** 2, h), nn.ReLU())
        self.head = nn.Linear(h, self.dim)
        self.exits = nn.ModuleList([nn.Linear(w, self.dim), nn.Linear(2 * w, self.dim)])
        _seeded_init(self, check_int("seed", seed, min_value=0))

    @property
    def n_layers(self) -> int:
        """Number of embeddings :meth:`forward_layers` returns: 3, one per block."""
        return 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, C, H, W)`` -> ``(batch, dim)``."""
        out: torch.Tensor = self.head(self.block3(self.block2(self.block1(x))))
        return out

    def forward_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One ``(batch, dim)`` embedding per block; conv blocks are global-average pooled."""
        h1 = self.block1(x)  # (batch, w, H/2, W/2)
        h2 = self.block2(h1)  # (batch, 2w, H/4, W/4)
        return [
            self.exits[0](h1.mean(dim=(2, 3))),
            self.exits[1](h2.mean(dim=(2, 3))),
            self.head(self.block3(h2)),
        ]


class MLPEncoder(nn.Module):
    """Fully connected ReLU blocks and a linear output layer; input is flattened.

    Args:
        dim: embedding size.
        in_features: size of a flattened input (64 for 8x8 digits).
        hidden: units of each hidden block, e.g. ``(256, 256)``.
        seed: weight initialisation.

    Example:
        >>> MLPEncoder(dim=16, in_features=64)(torch.zeros(3, 1, 8, 8)).shape
        torch.Size([3, 16])
    """

    def __init__(
        self,
        dim: int = 64,
        *,
        in_features: int = 64,
        hidden: tuple[int, ...] = (256, 256),
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, min_value=1)
        self.in_features = check_int("in_features", in_features, min_value=1)
        if not hidden:
            raise ValueError("hidden must name at least one layer size, got ()")
        sizes = [self.in_features, *(check_int("hidden", s, min_value=1) for s in hidden)]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.ReLU()) for a, b in itertools.pairwise(sizes)
        )
        self.head = nn.Linear(sizes[-1], self.dim)
        self.exits = nn.ModuleList(nn.Linear(s, self.dim) for s in sizes[1:-1])
        _seeded_init(self, check_int("seed", seed, min_value=0))

    @property
    def n_layers(self) -> int:
        """Number of embeddings :meth:`forward_layers` returns: one per hidden block."""
        return len(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, ...)`` -> ``(batch, dim)``."""
        h = x.reshape(x.shape[0], -1)
        for block in self.blocks:
            h = block(h)
        out: torch.Tensor = self.head(h)
        return out

    def forward_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One ``(batch, dim)`` embedding per hidden block (the last is ``forward(x)``)."""
        h = x.reshape(x.shape[0], -1)
        outs: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            h = block(h)
            outs.append(self.head(h) if i == len(self.blocks) - 1 else self.exits[i](h))
        return outs


ENCODERS = ("cnn", "cnn_attn", "mlp")


def make_encoder(name: str, dim: int, input_shape: tuple[int, ...], *, seed: int = 0) -> nn.Module:
    """``"cnn"`` (square images, side divisible by 4), ``"cnn_attn"`` (the same with spatial
    attention, :class:`~embedlab.training.attention_encoder.AttentionConvEncoder`) or ``"mlp"``.

    Args:
        name: ``"cnn"``, ``"cnn_attn"`` or ``"mlp"``.
        dim: embedding size.
        input_shape: one sample's shape, e.g. ``(1, 28, 28)``.
        seed: weight initialisation.
    """
    check_choice("encoder", name, ENCODERS)
    if name in ("cnn", "cnn_attn"):
        if len(input_shape) != 3 or input_shape[1] != input_shape[2]:
            raise ValueError(
                f"the {name} encoder needs square images (channels, side, side), got {input_shape}"
            )
        if name == "cnn_attn":
            from embedlab.training.attention_encoder import AttentionConvEncoder

            return AttentionConvEncoder(
                dim, in_channels=input_shape[0], image_size=input_shape[1], seed=seed
            )
        return ConvEncoder(dim, in_channels=input_shape[0], image_size=input_shape[1], seed=seed)
    n_in = 1
    for s in input_shape:
        n_in *= int(s)
    return MLPEncoder(dim, in_features=n_in, seed=seed)
