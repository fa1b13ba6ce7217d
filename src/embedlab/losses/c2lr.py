"""C²LR (DNABERT-S): weighted SimCLR first, then MI-Mix, switched by epoch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from embedlab._validation import (
    check_embeddings,
    check_float_in_range,
    check_int,
    check_positive_float,
    check_same_batch,
)
from embedlab.losses._base import MetricLoss, has_pairs, zero_loss
from embedlab.losses._registry import register_loss
from embedlab.losses.mimix import MIMixLoss

__all__ = ["C2LRLoss", "weighted_simclr"]


def weighted_simclr(
    a: torch.Tensor, b: torch.Tensor, *, temperature: float = 0.05, hardness: float = 1.0
) -> torch.Tensor:
    """SimCLR (NT-Xent) with negatives re-weighted towards hard ones (DNABERT-S phase I).

    The ``2n`` rows of ``[a; b]`` (L2-normalised) are anchors; row ``i`` of ``a`` and row
    ``i`` of ``b`` are a positive pair, and each anchor's negatives are the other ``2n - 2``
    rows. With ``s = cos / temperature`` the negatives' sum is importance-weighted,
    ``N_g = sum_k w_k exp(s_k)`` with ``w_k = exp(hardness * s_k) / mean_k exp(hardness * s_k)``,
    and the loss is ``-mean log(exp(s_pos) / (exp(s_pos) + N_g))``. ``hardness = 1`` is the
    authors' weighting (the weight of a negative is its own ``exp(s)``); ``hardness = 0``
    is plain SimCLR.

    Args:
        a, b: ``(n, dim)`` embeddings of two views, ``n >= 2``.
        temperature: ``> 0``.
        hardness: ``>= 0``.

    Returns:
        ``()`` the loss (zero, in the graph, with a ``NoPairsWarning`` for ``n < 2``).
    """
    a = check_embeddings("a", a)
    b = check_embeddings("b", b)
    check_same_batch("a", a, "b", b)
    t = check_positive_float("temperature", temperature)
    beta = check_positive_float("hardness", hardness, strict=False)
    n = a.shape[0]
    # an empty batch or one row has no negative: a zero loss and a NoPairsWarning
    if not has_pairs(torch.arange(n), needs_positives=False, needs_negatives=True):
        return zero_loss(a) + zero_loss(b)
    z = F.normalize(torch.cat([a, b]), dim=1)  # (2n, dim)
    s = z @ z.T / t
    idx = torch.arange(2 * n, device=z.device)
    partner = (idx + n) % (2 * n)
    s_pos = s[idx, partner]  # (2n,)
    neg = torch.ones_like(s, dtype=torch.bool)
    neg[idx, idx] = False
    neg[idx, partner] = False
    s_neg = s[neg].view(2 * n, 2 * n - 2)
    # log N_g = log(2n - 2) + logsumexp((1 + beta) s) - logsumexp(beta s)
    log_ng = (
        math.log(2 * n - 2)
        + torch.logsumexp((1 + beta) * s_neg, dim=1)
        - torch.logsumexp(beta * s_neg, dim=1)
    )
    return (torch.logaddexp(s_pos, log_ng) - s_pos).mean()


@register_loss("c2lr")
class C2LRLoss(MetricLoss):
    """Curriculum contrastive learning (C²LR) of DNABERT-S.

    Phase I (the first ``floor(switch * epochs)`` epochs): :func:`weighted_simclr` on two
    augmented views; phase II (the rest): MI-Mix (:class:`~embedlab.losses.MIMixLoss`) on
    clean and mixed inputs. :class:`~embedlab.training.MetricTrainer` calls
    :meth:`set_epoch` before each epoch and feeds the loss what :meth:`phase_input_kind`
    asks for (``"pairs"`` or ``"mix"``). The authors' code uses ``switch = 1/3`` (1 of 3
    epochs) and reloads the last phase-I checkpoint at the switch, which is the model it
    already holds here.

    Zhou et al., "DNABERT-S: Pioneering Species Differentiation with Species-Aware DNA
    Embeddings", 2024.

    Args:
        switch: fraction of the epochs in phase I, in ``[0, 1]``.
        temperature: of both phases, ``> 0`` (the authors use 0.05).
        hardness: negative re-weighting of phase I (see :func:`weighted_simclr`).

    Shapes:
        phase I: ``forward(a (batch, dim), b (batch, dim)) -> ()``;
        phase II: ``forward(a, b, lam=(batch,), perm=(batch,)) -> ()`` (``b`` mixed).

    Example:
        >>> import torch
        >>> loss = C2LRLoss()
        >>> loss.set_epoch(1, 3)
        >>> loss.phase, loss.phase_input_kind()
        (1, 'pairs')
        >>> float(loss(torch.randn(8, 4), torch.randn(8, 4))) > 0
        True
    """

    input_kind = "pairs"

    def __init__(
        self, *, switch: float = 1 / 3, temperature: float = 0.05, hardness: float = 1.0
    ) -> None:
        super().__init__()
        self.switch = check_float_in_range("switch", switch, 0.0, 1.0)
        self.temperature = check_positive_float("temperature", temperature)
        self.hardness = check_positive_float("hardness", hardness, strict=False)
        self.mimix = MIMixLoss(temperature=self.temperature)
        self.phase = 1

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Enter the phase of 1-based ``epoch`` out of ``epochs``."""
        total = check_int("epochs", epochs, min_value=1)
        e = check_int("epoch", epoch, min_value=1)
        self.phase = 1 if e <= math.floor(self.switch * total + 1e-9) else 2

    def phase_input_kind(self) -> str:
        """``"pairs"`` (two views) in phase I, ``"mix"`` (clean, mixed) in phase II."""
        return "pairs" if self.phase == 1 else "mix"

    def forward(
        self,
        a: torch.Tensor,
        b: torch.Tensor,
        *,
        lam: torch.Tensor | None = None,
        perm: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.phase == 1:
            if lam is not None or perm is not None:
                raise ValueError(
                    "lam and perm must be None in phase 1 (weighted SimCLR on two views), "
                    "got mixing proportions"
                )
            return weighted_simclr(a, b, temperature=self.temperature, hardness=self.hardness)
        out: torch.Tensor = self.mimix(a, b, lam=lam, perm=perm)
        return out
