"""Starbucks: 2D Matryoshka over a fixed list of (layer, dim) pairs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from embedlab._validation import check_choice, check_embeddings, check_int, check_positive_float
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

    ``L = 1/|S| sum_{(l, d) in S} [base(normalize(layers[l][:, :d]), labels) + KL_{l,d}]``:
    the encoder exposes its per-layer (pooled) embeddings and each listed layer is
    trained to be a good embedding at its listed prefix size.

    KL term (off by default here, ``kl_weight=0``; the paper's reference code has it on
    with weight 1 and temperature 0.3): for every pair whose layer is not the last one
    (``len(layers) - 1``), the sub-model (layer ``l``, first ``d`` dims) is pulled
    towards the full model (last layer):

    - ``kl_on="embeddings"`` (the reference code, ``ielab/Starbucks``
      ``sts/starbucks_loss.py``): ``KL_{l,d} = kl_weight * kl_temperature *
      1/B sum_i KL(softmax(full_i[:d]) || softmax(h_i[:d]))`` over the raw (unnormalised)
      embedding coordinates; ``kl_temperature`` is a plain multiplier there, as in that code;
    - ``kl_on="scores"``: the in-batch score distributions, ``KL_{l,d} = kl_weight *
      1/B sum_i KL(softmax(S_full[i] / kl_temperature) || softmax(S_ld[i] / kl_temperature))``
      with ``S`` the cosine similarities of sample ``i`` to the other samples of the batch
      (the diagonal is left out); ``S_full`` uses all dims of the last layer.

    Gradients reach both sides (the full model is not detached), as in the reference code.

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
        kl_weight: weight of the KL term (``0``: no KL term, the default).
        kl_temperature: see above (reference code default 0.3).
        kl_on: ``"embeddings"`` (reference code) or ``"scores"``.

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
        kl_weight: float = 0.0,
        kl_temperature: float = 0.3,
        kl_on: str = "embeddings",
    ) -> None:
        super().__init__()
        self.kl_weight = check_positive_float("kl_weight", kl_weight, strict=False)
        self.kl_temperature = check_positive_float("kl_temperature", kl_temperature)
        self.kl_on = check_choice("kl_on", kl_on, ("embeddings", "scores"))
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
        last = len(layers) - 1
        full = check_embeddings(f"layers[{last}]", layers[last]) if self.kl_weight > 0 else None
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
            if full is not None and layer != last:
                term = term + self._kl(h, full, d)
            total = term if total is None else total + term
        assert total is not None
        return total / len(self.pairs)

    def _kl(self, h: torch.Tensor, full: torch.Tensor, d: int) -> torch.Tensor:
        """The weighted KL term of one (layer, dim) sub-model against the full model."""
        if self.kl_on == "embeddings":
            if full.shape[1] < d:
                raise ValueError(f"the last layer must have at least {d} dims, got {full.shape[1]}")
            kl = F.kl_div(
                F.log_softmax(h[:, :d], dim=-1),
                F.softmax(full[:, :d], dim=-1),
                reduction="batchmean",
            )
            return self.kl_weight * self.kl_temperature * kl
        n = h.shape[0]
        if n < 2:
            raise ValueError(f"kl_on='scores' needs a batch of at least 2, got {n}")
        off = ~torch.eye(n, dtype=torch.bool, device=h.device)

        def log_probs(x: torch.Tensor) -> torch.Tensor:
            z = F.normalize(x, dim=-1)
            s = (z @ z.T)[off].view(n, n - 1) / self.kl_temperature
            return F.log_softmax(s, dim=-1)

        kl = F.kl_div(log_probs(h[:, :d]), log_probs(full), reduction="batchmean", log_target=True)
        return self.kl_weight * kl
