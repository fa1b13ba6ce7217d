"""Product quantisation shared by the ``dpq`` and ``mgqe`` tables.

The layer and the byte accounting live in :mod:`embedlab.tables._pq_quantizer` (re-exported
here); this module holds the table:

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

from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from embedlab._validation import (
    check_choice,
    check_divides,
    check_positive_float,
)
from embedlab.fields import Field
from embedlab.tables._base import EmbeddingTable
from embedlab.tables._bits import index_bits, pack_bits
from embedlab.tables._phases import PhaseContext
from embedlab.tables._pq_quantizer import (
    _ASSIGN_CHUNK,
    CENTROID_CHOICES,
    RANK_BLOCK,
    PQPlan,
    ProductQuantizer,
    Variant,
    plan_pq,
    split_tiers,
    tier_map_bytes,
)

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
    resume_attrs: ClassVar[tuple[str, ...]] = ("tiered_by",)
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
