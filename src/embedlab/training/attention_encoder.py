"""A CNN encoder with a spatial attention module (the attention of Dynamic Subspace Learners)."""

from __future__ import annotations

import torch
from torch import nn

from embedlab.training.encoders import ConvEncoder, _seeded_init

__all__ = ["AttentionConvEncoder"]


class AttentionConvEncoder(ConvEncoder):
    """:class:`ConvEncoder` whose last conv feature map is gated by a learned spatial attention.

    ``a = sigmoid(conv1x1(relu(conv1x1(h))))`` is one ``(H/4, W/4)`` map per image, and the
    head sees ``h * a``: the network learns where to look, and :meth:`attention` returns the
    map for visual explanations. This is the attention module of Dynamic Subspace Learners
    (Adiga Vasudeva, Dolz, Lombaert, IEEE JBHI 2022), our reading at this encoder's scale;
    train it with the ``dsl`` loss (``embedlab bench metric --model cnn_attn``).

    Args:
        as :class:`ConvEncoder`; ``attention_hidden``: channels of the attention's hidden layer.

    Example:
        >>> enc = AttentionConvEncoder(dim=32)
        >>> enc.attention(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 1, 7, 7])
    """

    def __init__(
        self,
        dim: int = 64,
        *,
        in_channels: int = 1,
        image_size: int = 28,
        width: int = 16,
        hidden: int = 128,
        attention_hidden: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__(
            dim, in_channels=in_channels, image_size=image_size, width=width, hidden=hidden,
            seed=seed,
        )  # fmt: skip
        self.attend = nn.Sequential(
            nn.Conv2d(2 * width, attention_hidden, 1),
            nn.ReLU(),
            nn.Conv2d(attention_hidden, 1, 1),
            nn.Sigmoid(),
        )
        _seeded_init(self.attend, seed + 1)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, H/4, W/4)`` attention map in (0, 1) of images ``(batch, C, H, W)``."""
        out: torch.Tensor = self.attend(self.block2(self.block1(x)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, C, H, W)`` -> ``(batch, dim)``."""
        h = self.block2(self.block1(x))  # (batch, 2w, H/4, W/4)
        out: torch.Tensor = self.head(self.block3(h * self.attend(h)))
        return out

    def forward_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One ``(batch, dim)`` embedding per block; the last one is ``forward(x)``."""
        h1 = self.block1(x)
        h2 = self.block2(h1)
        return [
            self.exits[0](h1.mean(dim=(2, 3))),
            self.exits[1](h2.mean(dim=(2, 3))),
            self.head(self.block3(h2 * self.attend(h2))),
        ]
