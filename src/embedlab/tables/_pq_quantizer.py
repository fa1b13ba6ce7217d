"""Product quantisation pieces shared by the ``dpq`` and ``mgqe`` tables.

- :class:`ProductQuantizer`, the differentiable product-quantisation layer: a vector
  of ``dim`` floats is cut into ``D`` groups of ``dim / D``; each group picks one of
  ``K`` centroids (its *code*) and the output is the concatenation of the chosen
  value centroids. Training goes through a straight-through estimator (DPQ's SX
  softmax or VQ nearest neighbour).
- the storage accounting of the deployable form: codes bit-packed at
  ``ceil(log2 K)`` bits, plus, when ids are split into frequency tiers, a tier bitmap
  and its rank directory; :func:`plan_pq` turns a byte budget into ``D`` groups and
  ``K`` centroids per tier.

:class:`~embedlab.tables._codebook.ProductQuantizedTable` is the table built on them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from embedlab._validation import (
    BudgetError,
)
from embedlab.tables._base import FLOAT32_BYTES
from embedlab.tables._bits import index_bits, packed_bytes

__all__ = [
    "CENTROID_CHOICES",
    "RANK_BLOCK",
    "RANK_BYTES",
    "PQPlan",
    "ProductQuantizer",
    "Variant",
    "plan_pq",
    "split_tiers",
    "tier_map_bytes",
]

#: centroids per group a plan may use: the powers of two 2..256 (codes fit a byte)
CENTROID_CHOICES: tuple[int, ...] = tuple(2**i for i in range(1, 9))
#: ids per entry of the tier map's rank directory (one uint32 count per tier but the last)
RANK_BLOCK = 512
#: bytes of one rank-directory count
RANK_BYTES = 4
#: ids whose codes are computed at once when the codes are frozen
_ASSIGN_CHUNK = 65536

Variant = Literal["sx", "vq"]


# --- storage accounting ------------------------------------------------------------
def tier_map_bytes(n_ids: int, n_tiers: int) -> int:
    """Bytes that tell an id's tier and its rank inside the tier (0 for a single tier).

    A bitmap of ``ceil(log2 n_tiers)`` bits per id, plus a rank directory of one
    uint32 count per tier but the last every :data:`RANK_BLOCK` ids (the rank of an
    id inside its tier, i.e. where its code sits in the tier's packed codes, is the
    block's count plus a popcount inside the block).
    """
    if n_tiers <= 1:
        return 0
    blocks = -(-n_ids // RANK_BLOCK)
    return packed_bytes(n_ids, index_bits(n_tiers)) + blocks * (n_tiers - 1) * RANK_BYTES


def split_tiers(cardinality: int, fractions: Sequence[float]) -> tuple[int, ...]:
    """Ids of one field per tier: tier ``t`` ends at ``ceil(sum(fractions[:t+1]) * card)``.

    Example:
        >>> split_tiers(7, (0.2,)), split_tiers(100, ()), split_tiers(10, (0.1, 0.3))
        ((2, 5), (100,), (1, 3, 6))
    """
    # The 1e-9 keeps float error (0.1 + 0.2 = 0.30000000000000004) from adding an id.
    cumulative = itertools.accumulate(fractions)
    ends = [min(cardinality, math.ceil(f * cardinality - 1e-9)) for f in cumulative]
    ends.append(cardinality)
    return tuple(b - a for a, b in zip([0, *ends[:-1]], ends, strict=True))


# --- budget planning ---------------------------------------------------------------
@dataclass(frozen=True)
class PQPlan:
    """``D`` groups and ``K_t`` centroids per tier, with the deployable bytes they cost.

    Attributes:
        dim: embedding dimension.
        groups: ``D``, divides ``dim``.
        centroids: ``K_t`` per tier, strictly decreasing (tier 0 holds the most frequent
            ids); every tier uses the first ``K_t`` of the ``K_0`` centroids of a group.
        tier_sizes: ids per tier.
    """

    dim: int
    groups: int
    centroids: tuple[int, ...]
    tier_sizes: tuple[int, ...]

    @property
    def bits(self) -> tuple[int, ...]:
        """Code bits per id in each tier: ``D * ceil(log2 K_t)``."""
        return tuple(self.groups * index_bits(k) for k in self.centroids)

    @property
    def total_code_bits(self) -> int:
        return sum(n * b for n, b in zip(self.tier_sizes, self.bits, strict=True))

    @property
    def code_bytes(self) -> int:
        """Each tier's codes packed at its own width, rounded up to bytes per tier."""
        return sum(
            packed_bytes(n * self.groups, index_bits(k))
            for n, k in zip(self.tier_sizes, self.centroids, strict=True)
        )

    @property
    def codebook_bytes(self) -> int:
        """Value centroids: ``D * K_0 * (dim / D) * 4`` (keys are not needed to decode)."""
        return self.centroids[0] * self.dim * FLOAT32_BYTES

    @property
    def map_bytes(self) -> int:
        return tier_map_bytes(sum(self.tier_sizes), len(self.tier_sizes))

    @property
    def total_bytes(self) -> int:
        return self.code_bytes + self.codebook_bytes + self.map_bytes


def plan_pq(
    method: str,
    tier_sizes: Sequence[int],
    dim: int,
    budget_bytes: int,
    *,
    compression: float,
    groups: int | None = None,
) -> PQPlan:
    """The feasible plan with the most code bits over all ids.

    Candidates: every ``D`` dividing ``dim`` (or the given ``groups``) and every
    strictly decreasing choice of ``K_t`` from :data:`CENTROID_CHOICES`, one per tier.
    Among those within ``budget_bytes`` the plan with the most code bits wins; ties go
    to the smaller codebook, then to more bits for the frequent tier, then to fewer
    groups.

    Raises:
        BudgetError: even the smallest plan (``D = 1`` or ``groups``, ``K`` = 2, 4, ...
            from the last tier up) does not fit; the message names the most
            compression the method reaches for these ids.
    """
    n_tiers = len(tier_sizes)
    all_groups = [d for d in range(1, dim + 1) if dim % d == 0] if groups is None else [groups]
    choices = sorted(CENTROID_CHOICES, reverse=True)
    plans = [
        PQPlan(dim, d, ks, tuple(tier_sizes))
        for d in all_groups
        for ks in itertools.combinations(choices, n_tiers)
    ]
    feasible = [p for p in plans if p.total_bytes <= budget_bytes]
    if not feasible:
        smallest = PQPlan(dim, all_groups[0], tuple(choices[-n_tiers:]), tuple(tier_sizes))
        need = smallest.total_bytes
        full = sum(tier_sizes) * dim * FLOAT32_BYTES
        raise BudgetError(
            f"{method} cannot reach compression {compression:g} for these fields: "
            f"needs at least {need} bytes, budget is {budget_bytes} ({method} reaches "
            f"compression at most {full / need:.1f}x, with D={smallest.groups} group(s) and "
            f"K={list(smallest.centroids)} centroids)"
        )
    return max(feasible, key=lambda p: (p.total_code_bits, -p.codebook_bytes, p.bits[0], -p.groups))


# --- the differentiable product-quantisation layer ----------------------------------
def _scores(
    q: torch.Tensor, keys: torch.Tensor, limit: torch.Tensor | None, temperature: float
) -> torch.Tensor:
    """``(D, n, K)`` = ``-||q_g - key_gk||^2 / temperature`` up to a per-row constant.

    Every centroid owns a Voronoi cell (with the plain dot product only centroids on
    the convex hull of the keys could ever win). Centroids ``k >= limit[i]`` score -inf.
    ``q`` is ``(D, n, sub)``, ``keys`` ``(D, K, sub)``, ``limit`` ``(n,)`` or None.
    """
    bias = keys.square().sum(dim=-1).neg().unsqueeze(1)  # (D, 1, K)
    scores = torch.baddbmm(bias, q, keys.transpose(1, 2), alpha=2.0)
    if temperature != 1.0:
        scores.div_(temperature)
    if limit is not None:
        k = torch.arange(keys.shape[1], device=q.device)
        scores.masked_fill_(k >= limit.unsqueeze(1), -math.inf)  # (n, K) over every group
    return scores


class _SoftmaxStraightThrough(torch.autograd.Function):
    """DPQ-SX: forward the value centroid of the best code, backward through the softmax.

    Equivalent to ``(one_hot(code) + soft - soft.detach()) @ values`` with
    ``soft = softmax(scores)``, written out so the ``(D, n, K)`` tensors are made once.
    """

    @staticmethod
    def forward(
        ctx: Any,
        q: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        limit: torch.Tensor | None,
        temperature: float,
    ) -> torch.Tensor:
        scores = _scores(q, keys, limit, temperature)
        codes = scores.argmax(dim=-1, keepdim=True)  # (D, n, 1)
        soft = torch.softmax(scores, dim=-1)
        out = torch.gather(values, 1, codes.expand(-1, -1, values.shape[-1]))  # (D, n, sub)
        ctx.save_for_backward(q, keys, values, soft, codes)
        ctx.temperature = temperature
        return out

    @staticmethod
    def backward(
        ctx: Any, grad_out: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None, None]:
        q, keys, values, soft, codes = ctx.saved_tensors
        index = codes.expand(-1, -1, values.shape[-1])
        grad_values = torch.zeros_like(values).scatter_add_(1, index, grad_out)
        g = torch.bmm(grad_out, values.transpose(1, 2))  # d loss / d soft, (D, n, K)
        g.sub_((g * soft).sum(dim=-1, keepdim=True)).mul_(soft)  # softmax backward
        g.mul_(2.0 / ctx.temperature)  # scores = (2 q.key - |key|^2) / temperature
        grad_q = torch.bmm(g, keys)
        grad_keys = torch.bmm(g.transpose(1, 2), q) - g.sum(dim=1).unsqueeze(-1) * keys
        return grad_q, grad_keys, grad_values, None, None


class ProductQuantizer(nn.Module):
    """``D`` groups of ``K`` key and value centroids; maps query vectors to codes and back.

    ``sx`` (DPQ's softmax variant): code ``c_g = argmax_k -||q_g - key_gk||^2``; the
    forward pass outputs the value centroid ``value_{g, c_g}`` exactly (one-hot), the
    backward pass uses the gradient of ``softmax(-||q_g - key_g.||^2 / temperature)``
    (straight-through), so queries, keys and values all learn from the task loss.

    ``vq``: the keys are the value centroids, ``c_g = argmin_k ||q_g - value_gk||``.
    The forward pass outputs the centroid, the task gradient goes straight through to
    the query, and :meth:`forward` also returns ``||sg(q) - v||^2 + beta ||q - sg(v)||^2``
    (codebook and commitment loss, VQ-VAE style) to be added to the loss.

    A per-row ``limit`` restricts a row to the first ``limit`` centroids of each group
    (MGQE's tiers).

    Args:
        dim: vector dimension, a multiple of ``groups``.
        groups: ``D``.
        centroids: ``K``.
        variant: ``"sx"`` or ``"vq"``.
        temperature: softmax temperature of ``sx``.
        beta: commitment weight of ``vq``.
        key_std: std of the normal initialisation of the keys.
        value_std: std of the normal initialisation of the values.
        generator: draws the initialisation.

    Shapes:
        queries ``(n, dim)``, limit ``(n,)`` int64 or None, codes ``(n, D)`` int64,
        outputs ``(n, dim)``; keys and values ``(D, K, dim / D)``.
    """

    keys: nn.Parameter | None

    def __init__(
        self,
        dim: int,
        groups: int,
        centroids: int,
        *,
        variant: Variant,
        temperature: float,
        beta: float,
        key_std: float,
        value_std: float,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        self.dim, self.groups, self.centroids = dim, groups, centroids
        self.sub_dim = dim // groups
        self.variant: Variant = variant
        self.temperature = temperature
        self.beta = beta
        shape = (groups, centroids, self.sub_dim)
        self.values = nn.Parameter(torch.empty(shape).normal_(0.0, value_std, generator=generator))
        if variant == "sx":
            keys = torch.empty(shape).normal_(0.0, key_std, generator=generator)
            self.keys = nn.Parameter(keys)
        else:
            self.keys = None

    def _by_group(self, queries: torch.Tensor) -> torch.Tensor:
        return queries.view(-1, self.groups, self.sub_dim).transpose(0, 1)  # (D, n, sub)

    @torch.no_grad()
    def assign(self, queries: torch.Tensor, limit: torch.Tensor | None = None) -> torch.Tensor:
        """Codes ``(n, D)`` int64 of queries ``(n, dim)``, each in ``[0, limit)``."""
        keys = self.values if self.keys is None else self.keys
        temperature = self.temperature if self.keys is not None else 1.0
        return _scores(self._by_group(queries), keys, limit, temperature).argmax(dim=-1).T

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Concatenated value centroids ``(n, dim)`` of codes ``(n, D)``."""
        offsets = torch.arange(0, self.groups * self.centroids, self.centroids, device=codes.device)
        flat = self.values.view(self.groups * self.centroids, self.sub_dim)
        return nn.functional.embedding(codes + offsets, flat).view(-1, self.dim)

    def forward(
        self, queries: torch.Tensor, limit: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Quantised ``(n, dim)`` with straight-through gradients, and the VQ loss (or None)."""
        if not torch.is_grad_enabled():
            return self.decode(self.assign(queries, limit)), None
        if self.keys is not None:
            out = _SoftmaxStraightThrough.apply(  # type: ignore[no-untyped-call]
                self._by_group(queries), self.keys, self.values, limit, self.temperature
            )
            return out.transpose(0, 1).reshape(-1, self.dim), None
        chosen = self.decode(self.assign(queries, limit))  # (n, dim)
        loss = (chosen - queries.detach()).square().sum(dim=-1).mean()
        loss = loss + self.beta * (queries - chosen.detach()).square().sum(dim=-1).mean()
        # Forward: the centroid; backward: the identity to the query.
        return chosen.detach() + (queries - queries.detach()), loss

    def drop_keys(self) -> None:
        """Free the keys (not needed once codes are fixed)."""
        if self.keys is not None:
            self.keys = nn.Parameter(self.keys.new_empty(0, 0, self.sub_dim), requires_grad=False)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, groups={self.groups}, centroids={self.centroids}, "
            f"variant={self.variant!r}"
        )


# --- the table both methods share ----------------------------------------------------
