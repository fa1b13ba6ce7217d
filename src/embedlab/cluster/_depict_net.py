"""DEPICT's denoising autoencoders: convolutional for images, fully connected for vectors.

Both return, for one input, the embedding, the clean hidden activations of every encoder
layer and their reconstructions by the decoder, so that the loss can reconstruct each
layer (the paper's layer-wise reconstruction, weight 0.1 on the hidden layers).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn

__all__ = ["AEOutput", "ConvAutoencoder", "MLPAutoencoder", "glorot_init", "make_autoencoder"]


@dataclass
class AEOutput:
    """One pass of an autoencoder.

    ``embedding (batch, dim)``; ``hidden``: the encoder activations, input first
    (``hidden[0]`` is the (noisy) input); ``recon``: the decoder's reconstruction of each of
    them, in the same order.
    """

    embedding: torch.Tensor
    hidden: list[torch.Tensor]
    recon: list[torch.Tensor]


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def glorot_init(net: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for every (transposed) convolution and linear
    layer: Lasagne's defaults, as in the reference code (PyTorch's default is Kaiming-uniform
    with a = sqrt(5))."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ConvAutoencoder(nn.Module):
    """Two strided convolutions (kernels 4 and 5, stride 2, leaky ReLU 0.01), a tanh
    embedding layer, and the mirrored transposed convolutions (the reference network).
    Dropout corrupts the input and the first convolution's output, not the last one's
    (the reference's dropouts 0.1, 0.1, 0.0); weights Glorot-uniform (:func:`glorot_init`).

    Shapes: ``x (batch, channels, height, width)`` in [-1, 1]; embedding ``(batch, dim)``.
    """

    def __init__(
        self, shape: tuple[int, int, int], *, dim: int, filters: int = 50, dropout: float = 0.1
    ) -> None:
        super().__init__()
        c, h, w = shape
        self.layers = [(4, 2, 0), (5, 2, 2)]  # (kernel, stride, padding) per conv
        sizes = [(h, w)]
        for k, s, p in self.layers:
            sizes.append((_conv_out(sizes[-1][0], k, s, p), _conv_out(sizes[-1][1], k, s, p)))
        if min(sizes[-1]) < 1:
            raise ValueError(f"images must be at least 8x8 for the DEPICT network, got {h}x{w}")
        self.sizes = sizes
        self.flat = filters * sizes[-1][0] * sizes[-1][1]
        act = nn.LeakyReLU(0.01)
        self.drop = nn.Dropout(dropout)
        self.enc = nn.ModuleList(
            [nn.Conv2d(c, filters, 4, 2, 0), nn.Conv2d(filters, filters, 5, 2, 2)]
        )
        self.to_emb = nn.Linear(self.flat, dim)
        self.from_emb = nn.Linear(dim, self.flat)
        dec = []
        for i, ((k, s, p), cin, cout) in enumerate(
            zip(reversed(self.layers), [filters, filters], [filters, c], strict=True)
        ):
            target, source = sizes[len(sizes) - 2 - i], sizes[len(sizes) - 1 - i]
            pad_out = (
                target[0] - ((source[0] - 1) * s - 2 * p + k),
                target[1] - ((source[1] - 1) * s - 2 * p + k),
            )
            dec.append(nn.ConvTranspose2d(cin, cout, k, s, p, output_padding=pad_out))
        self.dec = nn.ModuleList(dec)
        self.act = act

    def forward(self, x: torch.Tensor) -> AEOutput:
        hidden = [self.drop(x)]
        h = hidden[0]
        for i, conv in enumerate(self.enc):
            h = self.act(conv(h))
            h = self.drop(h) if i < len(self.enc) - 1 else h  # reference: dropouts 0.1, 0.1, 0
            hidden.append(h)
        emb = torch.tanh(self.to_emb(h.flatten(1)))
        r = self.act(self.from_emb(emb)).reshape(h.shape)
        recon = [r]
        for i, deconv in enumerate(self.dec):
            r = deconv(r)
            r = torch.tanh(r) if i == len(self.dec) - 1 else self.act(r)
            recon.append(r)
        return AEOutput(emb, hidden, recon[::-1])


class MLPAutoencoder(nn.Module):
    """Fully connected denoising autoencoder ``D -> hidden... -> dim -> ... -> D`` for
    vectors (standardised inputs, linear output).

    Shapes: ``x (batch, D)``; embedding ``(batch, dim)``.
    """

    def __init__(
        self, in_dim: int, *, dim: int, hidden: tuple[int, ...] = (500, 500), dropout: float = 0.1
    ) -> None:
        super().__init__()
        sizes = [in_dim, *hidden]
        self.drop = nn.Dropout(dropout)
        self.act = nn.LeakyReLU(0.01)
        self.enc = nn.ModuleList([nn.Linear(a, b) for a, b in pairwise(sizes)])
        self.to_emb = nn.Linear(sizes[-1], dim)
        self.from_emb = nn.Linear(dim, sizes[-1])
        self.dec = nn.ModuleList([nn.Linear(b, a) for a, b in pairwise(sizes)][::-1])

    def forward(self, x: torch.Tensor) -> AEOutput:
        hidden = [self.drop(x)]
        h = hidden[0]
        for i, lin in enumerate(self.enc):
            h = self.act(lin(h))
            h = self.drop(h) if i < len(self.enc) - 1 else h  # as the conv network
            hidden.append(h)
        emb = torch.tanh(self.to_emb(h))
        r = self.act(self.from_emb(emb))
        recon = [r]
        for i, lin in enumerate(self.dec):
            r = lin(r)
            r = r if i == len(self.dec) - 1 else self.act(r)
            recon.append(r)
        return AEOutput(emb, hidden, recon[::-1])


def make_autoencoder(
    sample_shape: tuple[int, ...], *, dim: int, filters: int, hidden: int, dropout: float
) -> nn.Module:
    """The convolutional network for images ``(c, h, w)``, the MLP for vectors ``(D,)``;
    Glorot-initialised."""
    net: nn.Module
    if len(sample_shape) == 3:
        c, h, w = sample_shape
        net = ConvAutoencoder((c, h, w), dim=dim, filters=filters, dropout=dropout)
    else:
        net = MLPAutoencoder(sample_shape[0], dim=dim, hidden=(hidden, hidden), dropout=dropout)
    glorot_init(net)
    return net
