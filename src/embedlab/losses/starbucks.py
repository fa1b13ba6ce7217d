"""Starbucks: 2D Matryoshka over a fixed list of (layer, dim) pairs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from embedlab._validation import check_embeddings, check_int
from embedlab.losses._base import MetricLoss
from embedlab.losses._registry import register_loss
from embedlab.losses.matryoshka import build_bases, default_nested_dims

__all__ = ["StarbucksLoss"]


def default_pairs(dim: int) -> tuple[tuple[int, int], ...]:
    """The small-model form of the paper's list: ``((1, 8), (2, 16), ..., (L, dim))``."""
    return tuple((i + 1, d) for i, d in enumerate(default_nested_dims(dim)))


def _parse_pairs(value: Any) -> tuple[tuple[int, int], ...]:
    if isinstance(value, str):  # "1x8-2x16" from a spec string
        try:
            value = [tuple(int(v) for v in part.split("x")) for part in value.split("-")]
        except ValueError:
            raise ValueError(f"pairs must look like '1x8-2x16', got {value!r}") from None
    out = []
    for pair in value:
        if len(pair) != 2:
            raise ValueError(f"pairs must be (layer, dim) pairs, got {pair!r}")
        out.append(
            (check_int("layer", pair[0], min_value=0), check_int("dim", pair[1], min_value=1))
        )
    if not out:
        raise ValueError("pairs must not be empty")
    return tuple(out)


@register_loss("starbucks")
class StarbucksLoss(MetricLoss):
    """Mean of a base loss over fixed ``(layer, dim)`` pairs of an encoder's layers.

    ``L = 1/|S| sum_{(l, d) in S} base(normalize(layers[l][:, :d]), labels)``: the
    encoder exposes its per-layer (pooled) embeddings and each listed layer is
    trained to be a good embedding at its listed prefix size. The paper's
    extra KL term between small and full similarity matrices is not included.

    Input: ``layers`` is a list/tuple of ``(batch, dim_l)`` tensors indexed by
    layer number (put the input/embedding layer at index 0 if layers count from
    1), e.g. the pooled hidden states ``[h_0, h_1, ..., h_L]`` of a transformer.

    Zhuang et al., "Starbucks: Improved Training for 2D Matryoshka Embeddings", 2024.

    Args:
        base: a "labels" loss instance (shared) or spec string (one per pair).
        pairs: ``((layer, dim), ...)`` or ``"1x8-2x16"``; default
            ``((1, 8), (2, 16), ..., (L, dim))`` (:func:`default_pairs`).
        dim: full embedding dim (given by :func:`make_loss`), for the default pairs.
        n_classes: passed on to bases built from a spec string.

    Shapes:
        ``forward(layers: Sequence[(batch, dim_l)], labels (batch,)) -> ()``.

    Example:
        >>> import torch
        >>> loss_fn = StarbucksLoss("supcon", pairs=((1, 8), (2, 16)))
        >>> layers = [torch.randn(16, 16) for _ in range(3)]
        >>> float(loss_fn(layers, torch.arange(16) % 4)) > 0
        True
    """

    input_kind = "labels"

    def __init__(
        self,
        base: MetricLoss | str = "supcon",
        *,
        pairs: Sequence[tuple[int, int]] | str | None = None,
        dim: int = 64,
        n_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.pairs = _parse_pairs(
            default_pairs(check_int("dim", dim, min_value=1)) if pairs is None else pairs
        )
        self.bases = build_bases(base, [d for _, d in self.pairs], n_classes)

    def forward(
        self, layers: Sequence[torch.Tensor] | torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        if isinstance(layers, torch.Tensor):
            layers = list(layers.unbind(0)) if layers.dim() == 3 else [layers]
        if not isinstance(layers, (list, tuple)):
            raise TypeError(f"layers must be a list of (batch, dim) tensors, got {type(layers)}")
        total: torch.Tensor | None = None
        for (layer, d), base in zip(self.pairs, self.bases, strict=True):
            if layer >= len(layers):
                raise ValueError(
                    f"layers must have more than {layer} entries for pair ({layer}, {d}), "
                    f"got {len(layers)}"
                )
            h = check_embeddings(f"layers[{layer}]", layers[layer])
            if h.shape[1] < d:
                raise ValueError(f"layers[{layer}] must have at least {d} dims, got {h.shape[1]}")
            term = base(F.normalize(h[:, :d], dim=-1), labels)
            total = term if total is None else total + term
        assert total is not None
        return total / len(self.pairs)
