"""AdaEmbed: a pool of rows reallocated to the most important ids during training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from embedlab._validation import (
    BudgetError,
    check_choice,
    check_fraction,
    check_int,
    check_positive_float,
)
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable
from embedlab.tables._registry import register_table

__all__ = ["AdaEmbTable"]

Importance = Literal["count", "grad"]
#: rescale the scores once the lazy-decay increment grows past this
_RENORM_AT = 1e20


@register_table("adaemb")
class AdaEmbTable(EmbeddingTable):
    """A pool of ``R`` rows owned by the ``R`` currently most important ids; the rest read 0.

    Every id has an importance score, an exponentially decayed sum over its accesses
    of ``1`` (``importance="count"``) or of the norm of the loss gradient w.r.t. its
    looked-up embedding (``"grad"``, as the paper: access frequency times gradient
    magnitude; the gradient exists for ids without a row too, since they read a zero
    vector that the loss still depends on). Every ``interval`` optimizer steps
    (:meth:`on_step`) the pool is reassigned to the top-``R`` ids: ids that keep a row
    keep its weights (and its slot), newly admitted ids start from a fresh
    ``N(0, init_std)`` row in a slot freed by an evicted id, evicted ids lose theirs.
    Incumbents rank with their score times ``1 + hysteresis`` so ids on the boundary
    do not swap back and forth. Ids without a row read a zero vector. (The trainer's
    Adam moments of a reused slot are not reset, the table cannot reach the optimizer;
    they fade within a few dozen steps.)

    Before any data (or used standalone) the scores start from a tiny prior, the
    expected access rate of an id under uniform ids within its field, ``1 / card_f``
    (with seeded jitter to break ties): small fields' ids, which are certainly
    accessed, hold rows first. One access outweighs the prior.

    The scores, the id -> slot map and the decay bookkeeping are training-time
    structures, not deployed and not counted. The deployed form
    (:meth:`export_pooled`) is the rows sorted by id plus the sorted int32 id keys,
    looked up by binary search (a missing id reads zeros).

    Single phase (``"train"``). Every step costs O(batch) (lazy decay: the increment
    grows by ``1 / decay`` per step instead of decaying every score); a reallocation
    costs one top-k over all ids.

    Budget: ``R = min(n_ids, budget // (dim * 4 + 4))`` rows of float32 plus one int32
    key each (8-byte keys if there are 2**31 ids or more). :class:`BudgetError` when
    not even one row fits.

    Lai et al., "AdaEmbed: Adaptive Embedding for Large-Scale Recommendation Models",
    OSDI 2023 ("AdaptEmb" in the VLDB 2024 benchmark of Zhang et al.).

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: embedding dimension.
        compression: use at most ``full_bytes / compression`` bytes.
        seed: seeds the initialisation, the fresh rows and the tie-breaking prior.
        interval: optimizer steps between reallocations (``M``).
        decay: per-step decay of the importance scores, in (0, 1).
        importance: ``"grad"`` (decayed sum of gradient norms) or ``"count"``.
        hysteresis: incumbents' bonus factor in the ranking, >= 0.
        init_std: std of the normal initialisation of (fresh) rows.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32; pool
        ``(R, dim)``; keys ``(R,)`` global ids (field offset + local id).

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = AdaEmbTable([Field("user", 957), Field("ctx", 7)], dim=16, compression=10)
        >>> table.pool_rows, table.describe()["pooled_per_field"]
        (90, [83, 7])
        >>> table(torch.tensor([[3, 6]])).shape
        torch.Size([1, 2, 16])
    """

    export_format = "pooled"
    offsets: torch.Tensor
    keys: torch.Tensor
    slot_of: torch.Tensor
    score: torch.Tensor

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        interval: int = 10,
        decay: float = 0.999,
        importance: Importance = "grad",
        hysteresis: float = 0.5,
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        self.interval = check_int("interval", interval, min_value=1)
        self.decay = check_fraction("decay", decay)
        self.importance: Importance = check_choice(  # type: ignore[assignment]
            "importance", importance, ("count", "grad")
        )
        self.hysteresis = check_positive_float("hysteresis", hysteresis, strict=False)
        self.init_std = check_positive_float("init_std", init_std)
        cards = self.cardinalities
        self.n_ids = sum(cards)
        self.key_bytes = 4 if self.n_ids < 2**31 else 8
        row_bytes = self.dim * FLOAT32_BYTES + self.key_bytes
        rows = min(self.n_ids, self.budget_bytes // row_bytes)
        if rows < 1:
            raise BudgetError(
                f"adaemb cannot reach compression {self.compression:g} for these fields: "
                f"needs at least {row_bytes} bytes, budget is {self.budget_bytes} "
                f"(one pooled row of {self.dim} float32 plus its id key)"
            )
        self.pool_rows = rows

        cards_t = torch.tensor(cards, dtype=torch.int64)
        offsets = torch.cumsum(cards_t, 0) - cards_t
        self.register_buffer("offsets", offsets, persistent=False)
        self._gen = torch.Generator().manual_seed(self.seed)
        field_of = torch.repeat_interleave(torch.arange(len(cards)), cards_t)
        prior = 1.0 / cards_t[field_of].to(torch.float32)
        jitter = 1.0 + 0.01 * torch.rand(self.n_ids, generator=self._gen)
        # Training-time structures (not deployed): importance and the id -> slot map.
        self.register_buffer("score", 1e-6 * prior * jitter, persistent=False)
        keys = torch.topk(self.score, rows).indices.sort().values
        self.register_buffer("keys", keys)  # slot -> global id, deployed (as int32)
        self.register_buffer(
            "slot_of", torch.full((self.n_ids,), -1, dtype=torch.int64), persistent=False
        )
        self.slot_of[keys] = torch.arange(rows)
        w = torch.empty(rows, self.dim).normal_(0.0, self.init_std, generator=self._gen)
        self.weight = nn.Parameter(w)
        self._increment = 1.0
        self.reallocations = 0
        self.moved_rows = 0
        self.register_load_state_dict_post_hook(_rebuild_slots)  # type: ignore[no-untyped-call]

    # --- importance and reallocation -----------------------------------------
    def _add_importance(self, gids: torch.Tensor, amount: torch.Tensor) -> None:
        self.score.index_add_(0, gids.reshape(-1), amount.reshape(-1) * self._increment)

    def on_step(self, step: int) -> None:
        self._increment /= self.decay  # decays every score by `decay`, lazily
        if self._increment > _RENORM_AT:
            self.score.div_(self._increment)
            self._increment = 1.0
        if step > 0 and step % self.interval == 0:
            self.reallocate()

    @torch.no_grad()
    def reallocate(self) -> int:
        """Give the pool to the top-``R`` ids by importance; returns how many ids moved in."""
        rank = self.score.clone()
        rank[self.keys] *= 1.0 + self.hysteresis
        top = torch.topk(rank, self.pool_rows).indices
        chosen = torch.zeros(self.n_ids, dtype=torch.bool, device=rank.device)
        chosen[top] = True
        free = torch.nonzero(~chosen[self.keys]).flatten()  # slots of evicted ids
        newcomers = top[self.slot_of[top] < 0].sort().values
        n_new = int(newcomers.numel())
        if n_new:
            self.slot_of[self.keys[free]] = -1
            self.keys[free] = newcomers
            self.slot_of[newcomers] = free
            fresh = torch.empty(n_new, self.dim).normal_(0.0, self.init_std, generator=self._gen)
            self.weight[free] = fresh.to(self.weight.device)
        self.reallocations += 1
        self.moved_rows += n_new
        return n_new

    def pooled_ids(self) -> torch.Tensor:
        """The global ids that hold a row, sorted ``(R,)``."""
        return self.keys.sort().values

    def export_pooled(self) -> dict[str, torch.Tensor]:
        """The deployable form: ``keys (R,)`` sorted global ids (int32, or int64 for 2**31
        ids or more) and ``rows (R, dim)`` float32 in key order. Global id of local id
        ``i`` of field ``f`` is ``sum(card[:f]) + i``; ``searchsorted(keys, gid)`` finds its
        row, an id not in ``keys`` reads zeros."""
        keys, order = self.keys.sort()
        dtype = torch.int32 if self.key_bytes == 4 else torch.int64
        return {
            "keys": keys.to(dtype).cpu(),
            "rows": self.weight.detach()[order].cpu().clone(),
        }

    # --- protocol -----------------------------------------------------------
    def memory_bytes(self) -> int:
        """``R * (dim * 4 + key_bytes)``: the pooled rows and their sorted id keys."""
        return self.pool_rows * (self.dim * FLOAT32_BYTES + self.key_bytes)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        gids = ids + self.offsets  # (batch, n_fields) global ids
        slot = self.slot_of[gids]
        present = (slot >= 0).unsqueeze(-1)
        rows = nn.functional.embedding(slot.clamp(min=0), self.weight)
        out = torch.where(present, rows, torch.zeros_like(rows))
        if self.training and torch.is_grad_enabled():
            if self.importance == "count":
                self._add_importance(gids, torch.ones(gids.shape, device=gids.device))
            elif out.requires_grad:
                out.register_hook(  # type: ignore[no-untyped-call]
                    lambda grad: self._add_importance(gids, grad.norm(dim=-1))
                )
        return out

    def describe(self) -> dict[str, object]:
        keys = self.keys.cpu()
        field = torch.bucketize(keys, self.offsets.cpu(), right=True) - 1
        per_field = torch.bincount(field, minlength=self.n_fields)
        return {
            "pool_rows": self.pool_rows,
            "interval": self.interval,
            "decay": self.decay,
            "importance": self.importance,
            "hysteresis": self.hysteresis,
            "reallocations": self.reallocations,
            "moved_rows": self.moved_rows,
            "pooled_per_field": [int(c) for c in per_field],
        }


def _rebuild_slots(module: nn.Module, incompatible_keys: object) -> None:
    """The id -> slot map follows the loaded keys."""
    if isinstance(module, AdaEmbTable):
        module.slot_of.fill_(-1)
        module.slot_of[module.keys] = torch.arange(module.pool_rows, device=module.keys.device)
