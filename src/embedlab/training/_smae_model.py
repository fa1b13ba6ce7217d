"""Shared pieces of SMAE pre-training: the encoder, its MLM head and the 2D Matryoshka loss.

Used by :mod:`embedlab.training.smae` (the MLM half and the pre-training loop) and
:mod:`embedlab.training.smae_mae` (the MAE decoder term); both import them from here, so
neither imports the other at call time. The public names are re-exported by
:mod:`embedlab.training.smae`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from embedlab._validation import check_int

__all__ = [
    "IGNORE",
    "TINY_HIDDEN",
    "TINY_LAYERS",
    "MLMHead",
    "SMAEConfig",
    "SMAEEncoder",
    "smae_loss",
]

IGNORE = -100
# A config is "tiny" (allowed on CPU) when it is at most this big.
TINY_HIDDEN, TINY_LAYERS = 128, 4


@dataclass(frozen=True)
class SMAEConfig:
    """Size of the BERT-style encoder (defaults: BERT-base)."""

    vocab_size: int
    hidden: int = 768
    layers: int = 12
    heads: int = 12
    ffn: int = 3072
    max_length: int = 128
    dropout: float = 0.1

    def __post_init__(self) -> None:
        check_int("vocab_size", self.vocab_size, min_value=6)
        check_int("hidden", self.hidden, min_value=1)
        check_int("layers", self.layers, min_value=1)
        check_int("heads", self.heads, min_value=1)
        check_int("ffn", self.ffn, min_value=1)
        check_int("max_length", self.max_length, min_value=3)
        if self.hidden % self.heads:
            raise ValueError(f"hidden must be divisible by heads={self.heads}, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def tiny(self) -> bool:
        """Small enough to pre-train for a few steps on CPU."""
        return self.hidden <= TINY_HIDDEN and self.layers <= TINY_LAYERS


class MLMHead(nn.Module):
    """BERT's MLM head (dense, GELU, LayerNorm, decoder) accepting truncated inputs.

    ``forward(h)`` with ``h[..., :d]`` (``d <= hidden``) uses the first ``d`` input columns of
    the dense weight, as Starbucks' reference does; the output is over the whole vocabulary.
    """

    def __init__(self, hidden: int, vocab_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.decoder = nn.Linear(hidden, vocab_size)

    def transform(self, h: torch.Tensor) -> torch.Tensor:
        """The head's dense (first ``d`` input columns), GELU and LayerNorm: ``(..., hidden)``."""
        d = h.shape[-1]
        if d > self.dense.in_features:
            raise ValueError(f"h has {d} dims, more than the head's {self.dense.in_features}")
        out: torch.Tensor = self.norm(
            F.gelu(F.linear(h, self.dense.weight[:, :d], self.dense.bias))
        )
        return out

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., vocab)`` from ``h`` of shape ``(..., d)``, ``d <= hidden``."""
        out: torch.Tensor = self.decoder(self.transform(h))
        return out


class SMAEEncoder(nn.Module):
    """BERT-style encoder (token + position embeddings, post-norm Transformer layers)."""

    def __init__(self, config: SMAEConfig) -> None:
        super().__init__()
        self.config = config
        self.tokens = nn.Embedding(config.vocab_size, config.hidden)
        self.positions = nn.Embedding(config.max_length, config.hidden)
        self.norm = nn.LayerNorm(config.hidden, eps=1e-12)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                config.hidden,
                config.heads,
                config.ffn,
                config.dropout,
                activation="gelu",
                batch_first=True,
                layer_norm_eps=1e-12,
            )
            for _ in range(config.layers)
        )

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        """Hidden states ``[embeddings, layer 1, ..., layer L]``, each ``(batch, seq, hidden)``."""
        pos = torch.arange(ids.shape[1], device=ids.device)
        h = self.drop(self.norm(self.tokens(ids) + self.positions(pos)))
        pad = ~attention_mask.bool()
        states = [h]
        for block in self.blocks:
            h = block(h, src_key_padding_mask=pad)
            states.append(h)
        return states


def smae_loss(
    hidden_states: Sequence[torch.Tensor],
    labels: torch.Tensor,
    head: nn.Module,
    pairs: Sequence[tuple[int, int]],
) -> torch.Tensor:
    """Mean over ``pairs`` of the MLM cross-entropy of ``head(hidden_states[l][..., :d])``.

    ``hidden_states[0]`` is the embedding output and ``hidden_states[l]`` that of layer
    ``l``; ``labels`` ``(batch, seq)`` hold token ids at masked positions and ``-100``
    elsewhere. Each pair's cross-entropy is the mean over masked positions.
    """
    if not pairs:
        raise ValueError("pairs must not be empty, got []")
    if not bool((labels != IGNORE).any()):
        raise ValueError("labels must have at least one masked position (label != -100)")
    total = labels.new_zeros((), dtype=hidden_states[0].dtype)
    for layer, dim in pairs:
        if not 0 <= layer < len(hidden_states):
            raise ValueError(f"pairs layer must be in [0, {len(hidden_states) - 1}], got {layer}")
        if not 1 <= dim <= hidden_states[layer].shape[-1]:
            raise ValueError(
                f"pairs dim must be in [1, {hidden_states[layer].shape[-1]}], got {dim}"
            )
        logits = head(hidden_states[layer][..., :dim])
        total = total + F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE
        )
    return total / len(pairs)
