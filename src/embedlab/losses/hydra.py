"""Hydra-style gated pairs: a learned feature gate per class pair."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from embedlab._validation import (
    check_bool,
    check_class_ids,
    check_embeddings,
    check_int,
    check_optional_int,
    check_positive_float,
)
from embedlab.losses._base import MetricLoss, check_label_batch, label_masks, zero_loss
from embedlab.losses._registry import register_loss
from embedlab.losses.supcon import soft_target_cross_entropy

__all__ = ["HydraLoss"]


@register_loss("hydra")
class HydraLoss(MetricLoss):
    """SupCon over cosines of gated embeddings, with one learned gate per class pair.

    For samples ``i``, ``j`` with classes ``c``, ``c'`` the gate is
    ``g = sigmoid(G[c, c'])`` (``(dim,)``, symmetric in ``c``, ``c'``) and the
    similarity is ``cos(g * x_i, g * x_j)``: each class pair compares the
    embeddings in its own learned subspace, so any pair can be made close in
    some subspace while classes stay separable in others. The loss is SupCon
    (same class = positive) on these similarities / ``temperature`` plus
    ``sparsity`` x the mean gate value (keeps gates from opening fully).

    ``cross=True`` is the paper's "arbitrary pairs" objective (SimLAP's ``type='arbitrary'``
    in the authors' code): every anchor ``i`` (class ``c``) gets a partner class ``p``, the
    labels under a random permutation of the batch (as the authors' code; ``p = c`` about as
    often as class ``c``'s share of the batch); the other rows of class ``p`` are its
    positives (the authors also count the anchor itself when ``p = c``), the rows of neither class
    its negatives (rows of class ``c`` are neither when ``p != c``), and every similarity of
    the anchor's row is taken in the anchor's pair subspace, ``cos(g * x_i, g * x_j)`` with
    ``g = sigmoid(G[c, p])``. Each positive ``q`` gives
    ``-s_iq + log(exp(s_iq) + sum_{n in neg} exp(s_in))`` (``s = cos / temperature``), and
    the loss is the mean over all (anchor, positive) pairs. The default ``cross=False``
    keeps this class's earlier behaviour (same-class positives, SupCon); the paper's
    framework is the cross-class one, switched on explicitly so existing specs and
    checkpoints train as before. The authors compute a pair's gate with an MLP on the mean
    of two learned label embeddings; here it is the symmetric table ``G`` below.

    Gates: ``rank=None`` keeps a full parameter ``G`` of shape
    ``(n_classes, n_classes, dim)`` (used as ``(G[c, c'] + G[c', c]) / 2``);
    ``rank=r`` uses ``G[c, c'] = (E_c * E_c') @ W`` with ``E (n_classes, r)`` and
    ``W (r, dim)``, i.e. ``n_classes * r + r * dim`` parameters.

    After "Rethinking Positive Pairs in Contrastive Learning" (Hydra), 2024;
    loss form: Khosla et al., SupCon, NeurIPS 2020.

    Args:
        dim: embedding dimension.
        n_classes: number of classes (labels in ``[0, n_classes)``).
        temperature: ``> 0``.
        rank: ``None`` (full gates) or the low rank ``r >= 1``.
        sparsity: weight of the mean-gate penalty, ``>= 0``.
        cross: arbitrary (cross-class) positive pairs in gated subspaces, see above.
        seed: seeds the gate initialisation and, with ``cross``, the partner draws.

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,)) -> ()``.

    Example:
        >>> import torch
        >>> loss_fn = HydraLoss(dim=8, n_classes=3)
        >>> float(loss_fn(torch.randn(12, 8), torch.arange(12) % 3)) > 0
        True
    """

    needs_positives = True
    needs_negatives = True

    def __init__(
        self,
        *,
        dim: int,
        n_classes: int,
        temperature: float = 0.1,
        rank: int | None = None,
        sparsity: float = 0.01,
        cross: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, min_value=1)
        self.n_classes = check_int("n_classes", n_classes, min_value=1)
        self.temperature = check_positive_float("temperature", temperature)
        self.rank = check_optional_int("rank", rank, min_value=1)
        self.sparsity = check_positive_float("sparsity", sparsity, strict=False)
        self.cross = check_bool("cross", cross)
        self.seed = check_int("seed", seed)
        gen = torch.Generator().manual_seed(self.seed)
        # partner classes of cross=True: their own stream, advanced once per forward
        self._partner_gen = torch.Generator().manual_seed(self.seed + 1)
        if self.rank is None:
            # start with gates about 0.88 open, slightly perturbed
            init = 2.0 + 0.1 * torch.randn(n_classes, n_classes, dim, generator=gen)
            self.gates = nn.Parameter(init)
        else:
            self.class_factors = nn.Parameter(
                1 + 0.1 * torch.randn(n_classes, self.rank, generator=gen)
            )
            self.dim_factors = nn.Parameter(
                2.0 / self.rank + 0.1 * torch.randn(self.rank, dim, generator=gen)
            )

    def gate_logits(self) -> torch.Tensor:
        """``(n_classes, n_classes, dim)`` symmetric gate logits."""
        if self.rank is None:
            return (self.gates + self.gates.transpose(0, 1)) / 2
        e = self.class_factors
        return torch.einsum("cr,kr,rd->ckd", e, e, self.dim_factors)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb, lab, ok = check_label_batch(
            embeddings, labels, needs_positives=True, needs_negatives=True
        )
        check_class_ids("labels", lab, self.n_classes)
        if emb.shape[1] != self.dim:
            raise ValueError(f"embeddings must have dim={self.dim}, got {emb.shape[1]}")
        if not ok:
            return zero_loss(emb) + zero_loss(self.gate_logits())
        if self.cross:
            perm = torch.randperm(lab.shape[0], generator=self._partner_gen).to(lab.device)
            return self.cross_loss(emb, lab, lab[perm])
        gates = torch.sigmoid(self.gate_logits().to(emb.dtype))  # (c, c, dim)
        g2 = (gates * gates)[lab][:, lab]  # (batch, batch, dim)
        x = F.normalize(emb, dim=1)
        num = torch.einsum("ijd,id,jd->ij", g2, x, x)
        sq = x * x
        ni = torch.einsum("ijd,id->ij", g2, sq)
        nj = torch.einsum("ijd,jd->ij", g2, sq)
        cos = num / (ni * nj).clamp_min(1e-12).sqrt()
        pos, neg = label_masks(lab)
        sup = soft_target_cross_entropy(cos / self.temperature, pos.to(emb.dtype), pos | neg)
        return sup + self.sparsity * gates.mean()

    def cross_loss(
        self, embeddings: torch.Tensor, labels: torch.Tensor, partners: torch.Tensor
    ) -> torch.Tensor:
        """The ``cross=True`` loss for given partner classes.

        Args:
            embeddings: ``(batch, dim)``.
            labels: ``(batch,)`` class ids.
            partners: ``(batch,)`` the partner class of each anchor.
        """
        emb = check_embeddings("embeddings", embeddings)
        check_class_ids("labels", labels, self.n_classes)
        check_class_ids("partners", partners, self.n_classes)
        if partners.shape != labels.shape:
            raise ValueError(
                f"partners must have the labels' shape {tuple(labels.shape)}, "
                f"got {tuple(partners.shape)}"
            )
        gates = torch.sigmoid(self.gate_logits().to(emb.dtype))  # (c, c, dim)
        g2 = gates[labels, partners] ** 2  # (batch, dim): the anchor's pair subspace
        x = F.normalize(emb, dim=1)
        sq = x * x
        num = (g2 * x) @ x.T  # sum_d g_id^2 x_id x_jd
        ni = (g2 * sq).sum(dim=1, keepdim=True)
        nj = g2 @ sq.T
        logits = num / (ni * nj).clamp_min(1e-12).sqrt() / self.temperature
        eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
        pos = (labels[None, :] == partners[:, None]) & ~eye
        neg = (labels[None, :] != partners[:, None]) & (labels[None, :] != labels[:, None])
        penalty = self.sparsity * gates.mean()
        if not bool(pos.any()):
            return zero_loss(logits) + penalty
        # log(exp(s_iq) + sum_neg exp(s_in)) for every (i, q), stable
        # (finfo.min, not -inf: a row without negatives must not give NaN gradients)
        masked = logits.masked_fill(~neg, torch.finfo(logits.dtype).min)
        neg_lse = torch.logsumexp(masked, dim=1, keepdim=True)
        per_pair = torch.logaddexp(logits, neg_lse) - logits  # (batch, batch)
        return per_pair[pos].mean() + penalty
