"""MI-Mix (DNABERT-S): predict the mixing proportions of mixed hidden states."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from embedlab._validation import check_embeddings, check_positive_float, check_same_batch
from embedlab.losses._base import MetricLoss, has_pairs, zero_loss
from embedlab.losses._registry import register_loss

__all__ = ["MIMixLoss", "mix_hidden"]


def mix_hidden(
    hidden: torch.Tensor, *, alpha: float = 1.0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix each row of a hidden state with another row of the batch.

    ``mixed[i] = lam[i] * hidden[i] + (1 - lam[i]) * hidden[perm[i]]`` with
    ``lam ~ Beta(alpha, alpha)`` and ``perm`` a random cyclic
    permutation (``perm[i] != i`` for batches of 2 or more).

    How an encoder exposes a layer: run the layers up to a randomly chosen
    layer ``l`` on the batch, call ``mix_hidden`` on that ``(batch, ...)`` hidden
    state, run the remaining layers on the mixed state, and pass the resulting
    embeddings with ``lam`` and ``perm`` to :class:`MIMixLoss` together with the
    clean embeddings of the same batch.

    Args:
        hidden: ``(batch, ...)``.
        alpha: Beta parameter, ``> 0``.
        generator: a seeded ``torch.Generator`` for reproducibility.

    Returns:
        ``mixed (batch, ...)``, ``lam (batch,)``, ``perm (batch,)`` int64.
    """
    a = check_positive_float("alpha", alpha)
    n = hidden.shape[0]
    shift = int(torch.randint(1, max(n, 2), (1,), generator=generator)) if n > 1 else 0
    order = torch.randperm(n, generator=generator)
    perm = torch.empty_like(order)
    perm[order] = order.roll(shift)  # a cycle: perm[i] != i
    lam = _beta_quantile(torch.rand(n, generator=generator, dtype=torch.float64), a)
    lam = lam.to(device=hidden.device, dtype=hidden.dtype)
    perm = perm.to(hidden.device)
    shape = (n,) + (1,) * (hidden.dim() - 1)
    lam_b = lam.view(shape)
    return lam_b * hidden + (1 - lam_b) * hidden[perm], lam, perm


def _beta_quantile(u: torch.Tensor, alpha: float) -> torch.Tensor:
    """Beta(alpha, alpha) samples from uniforms ``u`` (so ``generator`` seeds them)."""
    from scipy.special import betaincinv

    return torch.from_numpy(betaincinv(alpha, alpha, u.numpy()))


@register_loss("mimix")
class MIMixLoss(MetricLoss):
    """Cross-entropy between the mixing proportions and a similarity softmax.

    Mixed embedding ``m_i`` (from hidden states mixed as in :func:`mix_hidden`) is
    compared with all clean embeddings ``a_j`` of the batch; the softmax of
    ``cos(m_i, a_j) / T`` over ``j`` must predict the target distribution that
    puts ``lam_i`` on ``i`` and ``1 - lam_i`` on ``perm[i]``:
    ``L = -mean_i [lam_i log q_i,i + (1 - lam_i) log q_i,perm(i)]``.

    Zhou et al., "DNABERT-S: Pioneering Species Differentiation with
    Species-Aware DNA Embeddings", 2024 (MI-Mix, after i-Mix).

    Args:
        temperature: T, ``> 0``.

    Shapes:
        ``forward(a (batch, dim), b (batch, dim), *, lam (batch,), perm (batch,)) -> ()``:
        ``a`` the clean embeddings, ``b`` the mixed ones; ``lam`` and ``perm`` are required.

    Example:
        >>> import torch
        >>> a = torch.randn(8, 16)
        >>> mixed, lam, perm = mix_hidden(a, generator=torch.Generator().manual_seed(0))
        >>> float(MIMixLoss()(a, mixed, lam=lam, perm=perm)) > 0
        True
    """

    input_kind = "pairs"

    def __init__(self, *, temperature: float = 0.05) -> None:
        super().__init__()
        self.temperature = check_positive_float("temperature", temperature)

    def forward(
        self,
        a: torch.Tensor,
        b: torch.Tensor,
        *,
        lam: torch.Tensor | None = None,
        perm: torch.Tensor | None = None,
    ) -> torch.Tensor:
        a = check_embeddings("a", a)
        b = check_embeddings("b", b)
        check_same_batch("a", a, "b", b)
        if lam is None or perm is None:
            raise ValueError("lam and perm are required (see embedlab.losses.mimix.mix_hidden)")
        n = a.shape[0]
        lam = lam.to(device=a.device, dtype=a.dtype)
        perm = perm.to(a.device)
        if lam.shape != (n,) or perm.shape != (n,):
            raise ValueError(
                f"lam and perm must have shape ({n},), got {tuple(lam.shape)} and "
                f"{tuple(perm.shape)}"
            )
        # one row has no other row to be mixed with: a zero loss (and a warning), as a
        # batch without negatives in the other losses
        if not has_pairs(torch.arange(n), needs_positives=False, needs_negatives=True):
            return zero_loss(a) + zero_loss(b)
        logits = F.normalize(b, dim=1) @ F.normalize(a, dim=1).T / self.temperature
        log_q = F.log_softmax(logits, dim=1)
        rows = torch.arange(n, device=a.device)
        return -(lam * log_q[rows, rows] + (1 - lam) * log_q[rows, perm]).mean()
