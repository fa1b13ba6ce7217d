"""Metrix: mixup for metric learning, as a wrapper around a pair-based loss."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from embedlab._validation import check_choice, check_embeddings, check_int, check_positive_float
from embedlab.losses._base import MetricLoss, check_label_batch, label_masks, zero_loss
from embedlab.losses._registry import make_loss, register_loss

__all__ = ["MetrixLoss", "mix_targets"]


def mix_targets(
    labels: torch.Tensor, pairs: torch.Tensor, lam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolated targets of anchors against mixed samples.

    Mixed sample ``m`` is ``lam[m] * x[pairs[m, 0]] + (1 - lam[m]) * x[pairs[m, 1]]``;
    its positiveness for anchor ``i`` is
    ``lam[m] * [y_i == y_{pairs[m,0]}] + (1 - lam[m]) * [y_i == y_{pairs[m,1]}]``.

    Args:
        labels: ``(batch,)``; pairs: ``(n_mix, 2)`` int64; lam: ``(n_mix,)``.

    Returns:
        ``targets (batch, n_mix)`` and ``valid (batch, n_mix)`` (False where the anchor is
        one of the two mixed samples).
    """
    i0, i1 = pairs[:, 0], pairs[:, 1]
    same0 = (labels[:, None] == labels[i0][None, :]).to(lam.dtype)
    same1 = (labels[:, None] == labels[i1][None, :]).to(lam.dtype)
    targets = lam[None, :] * same0 + (1 - lam[None, :]) * same1
    rows = torch.arange(labels.shape[0], device=labels.device)[:, None]
    valid = (rows != i0[None, :]) & (rows != i1[None, :])
    return targets, valid


@register_loss("metrix")
class MetrixLoss(MetricLoss):
    """Metrix wrapper: base loss + ``weight`` x the base's soft-target loss on mixed samples.

    For each anchor with a positive and a negative, Metrix mixes one of its
    positives ``p`` with one of its negatives ``n``: ``m = lam p + (1 - lam) n``,
    ``lam ~ Beta(alpha, alpha)``; ``m`` has the interpolated target ``lam`` for
    that anchor (in general :func:`mix_targets`). The base loss must provide
    ``soft_loss(anchors, others, targets, valid)`` (contrastive: ``t [d - m+]_+ +
    (1 - t) [m- - d]_+``; supcon / infonce: soft-target cross-entropy).

    Embedding mixup happens inside ``forward``. For input or feature mixup,
    mix outside and pass the result (the documented hook)::

        pairs, lam = loss_fn.sample_mix(labels)            # (n_mix, 2), (n_mix,)
        lam_x = lam.view(-1, *[1] * (x.dim() - 1))
        x_mix = lam_x * x[pairs[:, 0]] + (1 - lam_x) * x[pairs[:, 1]]
        loss = loss_fn(encoder(x), labels, mixed=encoder(x_mix), pairs=pairs, lam=lam)

    Venkataramanan et al., "It Takes Two to Tango: Mixup for Deep Metric
    Learning", ICLR 2022.

    Args:
        base: a loss with ``soft_loss`` or its spec string (default ``"contrastive"``).
        alpha: Beta(alpha, alpha) parameter of lam, ``> 0``.
        weight: weight of the mixed term, ``>= 0``.
        mix: ``"embeddings"`` (mix in embedding space, default) or ``"none"``
            (only mixed samples passed to ``forward`` are used).
        seed: seeds the choice of pairs and lam.
        dim, n_classes: passed on to a base built from a spec string.

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,), *, mixed (n_mix, dim) | None,
        pairs (n_mix, 2) | None, lam (n_mix,) | None) -> ()``.

    Example:
        >>> import torch
        >>> loss_fn = MetrixLoss("contrastive", alpha=1.0, seed=0)
        >>> float(loss_fn(torch.randn(16, 8), torch.arange(16) % 4)) > 0
        True
    """

    needs_positives = True
    needs_negatives = True

    def __init__(
        self,
        base: MetricLoss | str = "contrastive",
        *,
        alpha: float = 1.0,
        weight: float = 1.0,
        mix: Literal["embeddings", "none"] = "embeddings",
        seed: int = 0,
        dim: int = 2,
        n_classes: int = 2,
    ) -> None:
        super().__init__()
        self.base = make_loss(base, dim=dim, n_classes=n_classes) if isinstance(base, str) else base
        if not hasattr(self.base, "soft_loss"):
            raise ValueError(
                f"base must be a loss with soft_loss (contrastive, supcon, infonce), "
                f"got {type(self.base).__name__}"
            )
        self.alpha = check_positive_float("alpha", alpha)
        self.weight = check_positive_float("weight", weight, strict=False)
        self.mix = check_choice("mix", mix, ("embeddings", "none"))
        self.seed = check_int("seed", seed)
        self._rng = np.random.default_rng(self.seed)

    def sample_mix(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For each anchor with a positive and a negative: ``(positive, negative)`` and lam.

        Returns ``pairs (n_mix, 2)`` int64 and ``lam (n_mix,)`` float32 (cast as needed).
        """
        pos, neg = label_masks(labels.cpu())
        keep = pos.any(1) & neg.any(1)
        noise = torch.from_numpy(self._rng.random((2, *pos.shape)))
        p = noise[0].masked_fill(~pos, -1.0).argmax(1)[keep]
        n = noise[1].masked_fill(~neg, -1.0).argmax(1)[keep]
        lam = torch.from_numpy(self._rng.beta(self.alpha, self.alpha, size=int(p.numel())))
        dev = labels.device
        return torch.stack([p, n], 1).to(dev), lam.to(device=dev, dtype=torch.float32)

    def forward(
        self,
        embeddings: torch.Tensor,
        labels: torch.Tensor,
        *,
        mixed: torch.Tensor | None = None,
        pairs: torch.Tensor | None = None,
        lam: torch.Tensor | None = None,
    ) -> torch.Tensor:
        emb, lab, ok = check_label_batch(
            embeddings, labels, needs_positives=True, needs_negatives=True
        )
        if not ok:
            return zero_loss(emb)
        clean: torch.Tensor = self.base(emb, lab)
        if mixed is None and self.mix == "none":
            return clean
        if pairs is None or lam is None:
            if mixed is not None:
                raise ValueError("mixed needs pairs and lam (see MetrixLoss.sample_mix)")
            pairs, lam = self.sample_mix(lab)
        lam = lam.to(device=emb.device, dtype=emb.dtype)
        if mixed is None:
            lam_col = lam[:, None]
            x = F.normalize(emb, dim=-1)
            mixed = lam_col * x[pairs[:, 0]] + (1 - lam_col) * x[pairs[:, 1]]
        else:
            mixed = check_embeddings("mixed", mixed)
            if mixed.shape[0] != pairs.shape[0] or lam.shape != (pairs.shape[0],):
                raise ValueError(
                    "mixed, pairs and lam must have the same length, got "
                    f"{mixed.shape[0]}, {pairs.shape[0]} and {tuple(lam.shape)}"
                )
        if pairs.shape[0] == 0:
            return clean
        targets, valid = mix_targets(lab, pairs, lam)
        soft: Any = self.base.soft_loss
        mixed_loss: torch.Tensor = soft(emb, mixed, targets, valid)
        return clean + self.weight * mixed_loss
