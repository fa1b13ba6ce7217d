"""Product quantisation shared by the ``dpq`` and ``mgqe`` tables.

Three pieces live here:

- :class:`ProductQuantizer`, the differentiable product-quantisation layer: a vector
  of ``dim`` floats is cut into ``D`` groups of ``dim / D``; each group picks one of
  ``K`` centroids (its *code*) and the output is the concatenation of the chosen
  value centroids. Training goes through a straight-through estimator (DPQ's SX
  softmax or VQ nearest neighbour).
- the storage accounting of the deployable form: codes bit-packed at
  ``ceil(log2 K)`` bits (packed with :mod:`embedlab.tables._bits`), plus, when ids
  are split into frequency tiers, a tier bitmap and its rank directory.
- :func:`plan_pq`, which turns a byte budget into ``D`` groups and ``K`` centroids
  per tier, and :class:`ProductQuantizedTable`, the embedding table both methods
  share (DPQ is its one-tier case, MGQE its frequency-tiered case).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from embedlab._validation import (
    BudgetError,
    check_choice,
    check_divides,
    check_positive_float,
)
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable
from embedlab.tables._bits import index_bits, pack_bits, packed_bytes
from embedlab.tables._phases import PhaseContext

__all__ = [
    "CENTROID_CHOICES",
    "RANK_BLOCK",
    "PQPlan",
    "ProductQuantizedTable",
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
class ProductQuantizedTable(EmbeddingTable):
    """Embeddings as product-quantised codes into one shared codebook (DPQ / MGQE core).

    Every id of every field (one global id space, fields at their offsets) has a
    continuous *query* embedding while it trains; :class:`ProductQuantizer` turns it
    into ``D`` codes and the output is the concatenation of the value centroids they
    select. Ids may be split into frequency tiers: tier ``t`` may use only the first
    ``K_t`` centroids of each group, so its codes need ``ceil(log2 K_t)`` bits.

    Phases: ``"train"`` learns queries, keys and values; :meth:`freeze` (run by
    ``end_phase("train")``) computes every id's codes once, stores them as a
    persistent uint8 buffer and drops the queries and keys; ``"finetune"`` then
    trains only the value centroids (and the model on top) with the codes fixed.

    Budget (:meth:`memory_bytes`, the deployable form at every stage):
    ``sum_t ceil(n_t * D * ceil(log2 K_t) / 8)`` code bytes ``+ K_0 * dim * 4``
    value-codebook bytes ``+`` the tier map when there are several tiers
    (:func:`tier_map_bytes`). ``D`` and the ``K_t`` come from :func:`plan_pq`.

    Subclasses pass ``tier_fractions``, the share of each field's ids in every tier
    but the last (:func:`split_tiers`); ``()`` gives a single tier.
    """

    phases: ClassVar[tuple[str, ...]] = ("train", "finetune")
    export_format = "codes"
    offsets: torch.Tensor
    codes: torch.Tensor
    tier: torch.Tensor | None
    tier_centroids: torch.Tensor

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float,
        seed: int,
        tier_fractions: Sequence[float],
        variant: str,
        groups: int | None,
        temperature: float,
        beta: float,
        init_std: float,
        code_std: float,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        check_choice("variant", variant, ("sx", "vq"))
        self.variant: Variant = "vq" if variant == "vq" else "sx"
        self.groups_asked = None if groups is None else check_divides("groups", groups, "dim", dim)
        self.temperature = check_positive_float("temperature", temperature)
        self.code_std = check_positive_float("code_std", code_std)
        self.beta = check_positive_float("beta", beta, strict=False)
        self.init_std = check_positive_float("init_std", init_std)
        self.tier_fractions = tuple(tier_fractions)
        self.field_tier_sizes = [split_tiers(c, self.tier_fractions) for c in self.cardinalities]
        n_tiers = len(self.tier_fractions) + 1
        tier_sizes = tuple(sum(s[t] for s in self.field_tier_sizes) for t in range(n_tiers))
        self.plan = plan_pq(
            self.name,
            tier_sizes,
            self.dim,
            self.budget_bytes,
            compression=self.compression,
            groups=self.groups_asked,
        )
        cards = torch.tensor(self.cardinalities, dtype=torch.int64)
        self.register_buffer("offsets", torch.cumsum(cards, 0) - cards, persistent=False)
        self.n_ids = int(cards.sum())
        gen = torch.Generator().manual_seed(self.seed)
        sub_dim = self.dim // self.plan.groups
        # sx: queries and keys at scale code_std, distances divided by code_std^2 so the
        # logits start at unit scale; a small scale lets Adam's steps (~lr) move queries
        # across centroid cells (at scale 1 the codes barely leave their random start).
        # vq: queries at the scale of the value centroids they are matched to.
        query_std = self.code_std * sub_dim**-0.5 if self.variant == "sx" else self.init_std
        self.query = nn.Parameter(
            torch.empty(self.n_ids, self.dim).normal_(0.0, query_std, generator=gen)
        )
        self.quantizer = ProductQuantizer(
            self.dim,
            self.plan.groups,
            self.plan.centroids[0],
            variant=self.variant,
            temperature=self.temperature * self.code_std**2,
            beta=self.beta,
            key_std=self.code_std,
            value_std=self.init_std,
            generator=gen,
        )
        self.register_buffer("codes", torch.zeros(0, self.plan.groups, dtype=torch.uint8))
        self.register_buffer(
            "tier_centroids", torch.tensor(self.plan.centroids, dtype=torch.int64), persistent=False
        )
        if n_tiers > 1:
            self.register_buffer("tier", torch.zeros(self.n_ids, dtype=torch.int8))
            self.assign_tiers(None)
        else:
            self.tier = None
        self.tiered_by = "uniform"
        self._aux_loss: torch.Tensor | None = None
        self.register_load_state_dict_pre_hook(_adopt_frozen_shapes)  # type: ignore[no-untyped-call]

    # --- tiers ------------------------------------------------------------------
    @torch.no_grad()
    def assign_tiers(self, counts: Sequence[np.ndarray] | None) -> None:
        """Put each field's most frequent ids in tier 0, the next in tier 1, ...

        Args:
            counts: one ``(cardinality,)`` array of training counts per field, or None
                for uniform frequencies (then the lowest ids go to tier 0). Ties keep
                the lower id first.
        """
        if self.tier is None:
            return
        tier = np.empty(self.n_ids, dtype=np.int8)
        start = 0
        for f, (card, sizes) in enumerate(
            zip(self.cardinalities, self.field_tier_sizes, strict=True)
        ):
            freq = np.zeros(card) if counts is None else np.asarray(counts[f])
            order = np.argsort(-freq, kind="stable")
            tier[start + order] = np.repeat(np.arange(len(sizes), dtype=np.int8), sizes)
            start += card
        self.tier.copy_(torch.from_numpy(tier))

    def _limit(self, global_ids: torch.Tensor) -> torch.Tensor | None:
        if self.tier is None:
            return None
        return self.tier_centroids[self.tier[global_ids].long()]

    # --- phases -----------------------------------------------------------------
    @property
    def frozen(self) -> bool:
        """Whether the codes are fixed (queries and keys dropped)."""
        return self.codes.numel() > 0

    def start_phase(self, phase: str, ctx: PhaseContext) -> None:
        check_choice("phase", phase, self.phases)
        if phase == self.phases[0] and self.tier is not None and not self.frozen:
            ids = ctx.train.ids
            counts = [
                np.bincount(ids[:, f], minlength=card)[:card]
                for f, card in enumerate(self.cardinalities)
            ]
            self.assign_tiers(counts)
            self.tiered_by = "frequency"

    def end_phase(self, phase: str, ctx: PhaseContext) -> None:
        check_choice("phase", phase, self.phases)
        if phase == self.phases[0]:
            self.freeze()

    @torch.no_grad()
    def freeze(self) -> None:
        """Compute every id's codes once, keep them, and drop the queries and keys."""
        if self.frozen:
            return
        chunks = []
        for lo in range(0, self.n_ids, _ASSIGN_CHUNK):
            ids = torch.arange(lo, min(lo + _ASSIGN_CHUNK, self.n_ids), device=self.query.device)
            chunks.append(self.quantizer.assign(self.query[ids], self._limit(ids)))
        self._drop_training_state(torch.cat(chunks).to(torch.uint8))

    def _pending_phase(self) -> str | None:
        return None if self.frozen else self.phases[0]

    def _drop_training_state(self, codes: torch.Tensor) -> None:
        self.codes = codes
        self.query = nn.Parameter(self.query.new_empty(0, self.dim), requires_grad=False)
        self.quantizer.drop_keys()

    # --- protocol -----------------------------------------------------------------
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        batch = ids.shape[0]
        flat = (ids + self.offsets).reshape(-1)
        # Quantise each distinct id of the batch once.
        unique, inverse = torch.unique(flat, return_inverse=True)
        if self.frozen:
            out = self.quantizer.decode(self.codes[unique].long())
        else:
            queries = nn.functional.embedding(unique, self.query)
            out, loss = self.quantizer(queries, self._limit(unique))
            if loss is not None:
                self._aux_loss = loss
        return nn.functional.embedding(inverse, out).view(batch, self.n_fields, self.dim)

    def regularization(self) -> torch.Tensor:
        """The VQ codebook + commitment loss of the last training forward (else zero)."""
        loss, self._aux_loss = self._aux_loss, None
        return torch.zeros((), device=self._device()) if loss is None else loss

    def memory_bytes(self) -> int:
        """Bit-packed codes per tier + value codebook + tier map (see the class docstring)."""
        return self.plan.total_bytes

    def export_packed(self) -> dict[str, torch.Tensor]:
        """The deployable form, byte for byte what :meth:`memory_bytes` counts.

        Keys: ``values`` ``(D, K_0, dim / D)`` float32; ``codes_t`` for each tier ``t``,
        uint8 packed codes of the tier's ids in ascending global id, ``(n_t, D)`` codes
        of ``ceil(log2 K_t)`` bits; with several tiers also ``tier_map`` (uint8 packed
        tier per id) and ``tier_rank`` ``(ceil(n_ids / 512), n_tiers - 1)`` int32, the
        number of ids of tier ``t`` before each block of 512 ids.

        Raises:
            RuntimeError: the codes are not frozen yet (call :meth:`freeze`).
        """
        if not self.frozen:
            raise RuntimeError(
                f"{self.name} codes must be frozen before export: call freeze() or train "
                "through end_phase('train') first"
            )
        codes = self.codes.cpu()
        tier = torch.zeros(self.n_ids, dtype=torch.int64) if self.tier is None else self.tier.cpu()
        out = {"values": self.quantizer.values.detach().cpu().clone()}
        for t, k in enumerate(self.plan.centroids):
            out[f"codes_{t}"] = pack_bits(codes[tier == t].reshape(-1), index_bits(k))
        n_tiers = len(self.plan.centroids)
        if n_tiers > 1:
            out["tier_map"] = pack_bits(tier, index_bits(n_tiers))
            starts = torch.arange(0, self.n_ids, RANK_BLOCK)
            before = [
                torch.cumsum((tier == t).long(), 0)[starts] - (tier[starts] == t).long()
                for t in range(n_tiers - 1)
            ]
            out["tier_rank"] = torch.stack(before, dim=1).to(torch.int32)
        return out

    def describe(self) -> dict[str, object]:
        plan = self.plan
        return {
            "variant": self.variant,
            "groups": plan.groups,
            "centroids": list(plan.centroids),
            "code_bits_per_id": list(plan.bits),
            "tier_sizes": list(plan.tier_sizes),
            "tiered_by": self.tiered_by if self.tier is not None else "none",
            "temperature": self.temperature,
            "code_std": self.code_std,
            "code_bytes": plan.code_bytes,
            "codebook_bytes": plan.codebook_bytes,
            "tier_map_bytes": plan.map_bytes,
            "codes_frozen": self.frozen,
        }


def _adopt_frozen_shapes(
    module: nn.Module, state_dict: Mapping[str, object], prefix: str, *args: object
) -> None:
    """Loading a frozen state (codes, no queries) into a table that is still training
    freezes the table first, so a deployed table can be saved and rebuilt."""
    codes = state_dict.get(prefix + "codes")
    if (
        isinstance(module, ProductQuantizedTable)
        and isinstance(codes, torch.Tensor)
        and codes.numel() > 0
        and not module.frozen
    ):
        device = module.codes.device
        module._drop_training_state(torch.zeros(codes.shape, dtype=torch.uint8, device=device))
