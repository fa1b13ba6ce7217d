"""Shared pieces of the dimension-search tables (``dnis``, ``autosrh``, ``autodim``).

- :class:`SearchTable`: the ``("search", "retrain")`` phase protocol. The table searches
  in its first phase, fixes its structure in ``end_phase("search")`` (a persistent
  ``searched`` flag, so a state dict restores the structure too) and reports the bytes
  of its deployable form from then on.
- :func:`frequency_groups` and :class:`GroupLayout` (in :mod:`embedlab.tables._dim_groups`,
  re-exported): frequency groups of ids and the deployable storage of kept dimensions.
- :class:`GroupedDimTable`: one embedding table whose output is scaled by a learnable
  gate per (frequency group, dim); DNIS and AutoSrh differ only in how they train and
  rank the gates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from embedlab._validation import check_choice, check_int, check_positive_float
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable
from embedlab.tables._bits import pack_bits
from embedlab.tables._dim_groups import (
    GROUP_HEADER_BYTES,
    GroupLayout,
    budget_error,
    frequency_groups,
    id_counts,
    index_dtype,
)
from embedlab.tables._export_util import block_ranks
from embedlab.tables._phases import PhaseContext

__all__ = [
    "GROUP_HEADER_BYTES",
    "GroupLayout",
    "GroupedDimTable",
    "SearchTable",
    "budget_error",
    "frequency_groups",
    "id_counts",
    "index_dtype",
]


class SearchTable(EmbeddingTable):
    """A table that searches its structure, then retrains it fixed.

    ``start_phase("search", ctx)`` calls :meth:`_begin_search`; ``end_phase("search",
    ctx)`` calls :meth:`_finish_search` (under ``no_grad``), sets the persistent
    ``searched`` flag and checks the deployable form fits the budget. Before that
    :meth:`memory_bytes` counts everything the table holds (the search form may be over
    budget); after it, :meth:`deployable_bytes`. ``retrain`` needs no hook.
    """

    phases: ClassVar[tuple[str, ...]] = ("search", "retrain")
    searched: torch.Tensor

    def __init__(
        self, fields: Sequence[Field], dim: int, *, compression: float = 1.0, seed: int = 0
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        self.register_buffer("searched", torch.zeros((), dtype=torch.bool))
        self._is_searched = False
        self.register_load_state_dict_post_hook(_after_load)  # type: ignore[no-untyped-call]

    @property
    def is_searched(self) -> bool:
        """Whether the search phase has ended and the structure is fixed."""
        return self._is_searched

    def start_phase(self, phase: str, ctx: PhaseContext) -> None:
        check_choice("phase", phase, self.phases)
        if phase == "search" and not self._is_searched:
            self._begin_search(ctx)

    def end_phase(self, phase: str, ctx: PhaseContext) -> None:
        check_choice("phase", phase, self.phases)
        if phase != "search" or self._is_searched:
            return
        with torch.no_grad():
            self._finish_search(ctx)
        self.searched.fill_(True)
        self._sync_from_buffers()
        memory = self.deployable_bytes()
        if memory > self.budget_bytes:  # a bug in the selection, not a user error
            raise RuntimeError(
                f"{self.name} selected a structure of {memory} bytes over its budget "
                f"{self.budget_bytes}"
            )

    def memory_bytes(self) -> int:
        """Deployable bytes after the search; every held byte before it."""
        return self.deployable_bytes() if self._is_searched else super().memory_bytes()

    def _pending_phase(self) -> str | None:
        return None if self._is_searched else "search"

    def export_arrays(self) -> dict[str, np.ndarray]:
        """The deployable arrays at their storage dtypes; their ``nbytes`` sum to
        :meth:`memory_bytes`. Only after the search."""
        if not self._is_searched:
            raise RuntimeError(
                f"{self.name} has no deployable form before end_phase('search'): "
                "train it (or call start_phase / end_phase) first"
            )
        return self._export()

    def _sync_from_buffers(self) -> None:
        """Refresh Python-side mirrors of persistent buffers (after search or a load)."""
        self._is_searched = bool(self.searched)

    # --- subclass hooks --------------------------------------------------------
    def _begin_search(self, ctx: PhaseContext | None) -> None:
        """Prepare the search (e.g. frequency groups from ``ctx.train``)."""

    def _finish_search(self, ctx: PhaseContext | None) -> None:
        raise NotImplementedError

    def deployable_bytes(self) -> int:
        """Bytes of the structure as it is fixed now."""
        raise NotImplementedError

    def _export(self) -> dict[str, np.ndarray]:
        raise NotImplementedError


def _after_load(module: nn.Module, incompatible: Any) -> None:
    if isinstance(module, SearchTable):
        module._sync_from_buffers()


class GroupedDimTable(SearchTable):
    """One table scaled by a learnable gate per (frequency group, dim).

    Output ``e[b, f] = v[id] * gate[group(id)]`` (elementwise over ``dim``), with ids of
    each field split into ``min(n_groups, cardinality)`` frequency groups
    (:func:`frequency_groups` on the training counts at ``start_phase("search")``; equal
    runs of ids until then). After the search the ``(group, dim)`` pairs are ranked by
    :meth:`_importance` and the best are kept to the budget (:meth:`GroupLayout.select`);
    the gate is folded into the kept weights and frozen, the rest reads as exactly zero.

    The gate is stored divided by ``gate_lr_mult`` (parameter ``gate_raw``, read through
    :meth:`gate`): Adam moves every parameter by about ``lr`` per step whatever its
    scale, so the gate moves ``gate_lr_mult`` times faster than the embeddings, as the
    papers' separate, larger architecture learning rate does, within the trainer's
    single optimizer.

    Budget: the deployable bytes of :class:`GroupLayout`. The smallest form keeps one dim
    of one id, so the reachable compression is very high; below it, :class:`BudgetError`.
    """

    export_format = "grouped"
    group_of: torch.Tensor
    keep: torch.Tensor
    offsets: torch.Tensor
    group_field: torch.Tensor
    group_rows: torch.Tensor

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        n_groups: int = 4,
        gate_lr_mult: float = 10.0,
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        self.n_groups = check_int("n_groups", n_groups, min_value=1)
        self.gate_lr_mult = check_positive_float("gate_lr_mult", gate_lr_mult)
        self.init_std = check_positive_float("init_std", init_std)
        cards = self.cardinalities
        per_field = [min(self.n_groups, c) for c in cards]
        need = min(self._smallest_group_bytes(c, g) for c, g in zip(cards, per_field, strict=True))
        if need > self.budget_bytes:
            raise budget_error(
                self.name, self.compression, need, self.budget_bytes, self.full_bytes
            )
        cards_t = torch.tensor(cards, dtype=torch.int64)
        self.register_buffer("offsets", torch.cumsum(cards_t, 0) - cards_t, persistent=False)
        field_of_group = np.repeat(np.arange(self.n_fields), per_field)
        self.register_buffer("group_field", torch.from_numpy(field_of_group), persistent=False)
        self._group_start = np.concatenate([[0], np.cumsum(per_field)[:-1]]).astype(np.int64)
        self.register_buffer("group_of", self._grouping(id_counts(None, cards)))
        n_total = int(sum(per_field))
        self.register_buffer("group_rows", torch.zeros(n_total), persistent=False)
        self.register_buffer("keep", torch.ones(n_total, self.dim, dtype=torch.bool))
        gen = torch.Generator().manual_seed(self.seed)
        self.weight = nn.Parameter(torch.empty(sum(cards), self.dim))
        with torch.no_grad():
            self.weight.normal_(0.0, self.init_std, generator=gen)
        self.gate_raw = nn.Parameter(torch.full((n_total, self.dim), 1.0 / self.gate_lr_mult))
        self._sync_from_buffers()

    def _smallest_group_bytes(self, card: int, groups: int) -> int:
        """One kept dim of the smallest group a field can have (one id, or the field)."""
        rows = card if groups == 1 else 1
        key = 0 if groups == 1 else index_dtype(card).itemsize
        return rows * (FLOAT32_BYTES + key) + index_dtype(self.dim).itemsize + GROUP_HEADER_BYTES

    def _grouping(self, counts: Sequence[np.ndarray]) -> torch.Tensor:
        parts = [
            torch.from_numpy(frequency_groups(c, self.n_groups) + int(start))
            for c, start in zip(counts, self._group_start, strict=True)
        ]
        return torch.cat(parts)

    @property
    def n_groups_total(self) -> int:
        return int(self.group_field.shape[0])

    def _sync_from_buffers(self) -> None:
        super()._sync_from_buffers()
        rows = torch.bincount(self.group_of, minlength=self.n_groups_total)
        self.group_rows.copy_(rows.to(self.group_rows.dtype))

    def layout(self) -> GroupLayout:
        """The storage layout of the current groups."""
        return GroupLayout.of(
            self.group_of.cpu().numpy(),
            self.group_field.cpu().numpy(),
            self.cardinalities,
            self.dim,
        )

    # --- forward ------------------------------------------------------------
    def gate(self) -> torch.Tensor:
        """``(n_groups_total, dim)`` the learned gate (DNIS's alpha, AutoSrh's saliency)."""
        return self.gate_raw * self.gate_lr_mult

    def gates(self) -> torch.Tensor:
        """``(n_groups_total, dim)`` multiplier per (group, dim): the learned gate while
        searching, the 0/1 kept mask after it."""
        return self.keep.to(self.weight.dtype) if self._is_searched else self.gate()

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        rows = ids + self.offsets  # (batch, n_fields) global rows
        v = nn.functional.embedding(rows, self.weight)  # (batch, n_fields, dim)
        if self._is_searched:  # kept dims as they are, dropped ones exactly +0 (as exported)
            return torch.where(self.keep[self.group_of[rows]], v, torch.zeros_like(v))
        return v * self.gate()[self.group_of[rows]]

    # --- search ------------------------------------------------------------
    def _begin_search(self, ctx: PhaseContext | None) -> None:
        counts = id_counts(ctx, self.cardinalities)
        with torch.no_grad():
            self.group_of.copy_(self._grouping(counts).to(self.group_of.device))
            self.gate_raw.fill_(1.0 / self.gate_lr_mult)
        self._sync_from_buffers()

    def _importance(self) -> np.ndarray:
        """``(n_groups_total, dim)`` score of each (group, dim) pair; higher is kept first."""
        raise NotImplementedError

    def _finish_search(self, ctx: PhaseContext | None) -> None:
        self._fold(self.layout().select(self._importance(), self.budget_bytes))

    def _fold(self, keep: np.ndarray) -> None:
        """Fix the structure to ``keep`` (``(n_groups_total, dim)`` bool): fold the gate
        into the kept weights, zero the dropped ones and freeze the gate."""
        keep_t = torch.from_numpy(keep).to(self.keep.device)
        scale = self.gate() * keep_t  # dropped pairs become exact zeros
        self.weight.mul_(scale[self.group_of])
        self.keep.copy_(keep_t)
        self.gate_raw.requires_grad_(False)

    # --- memory -------------------------------------------------------------
    def kept_dims(self) -> np.ndarray:
        """``(n_groups_total,)`` dims kept per group (all before the search)."""
        return self.keep.sum(dim=1).cpu().numpy()

    def deployable_bytes(self) -> int:
        return self.layout().bytes(self.kept_dims())

    def _export(self) -> dict[str, np.ndarray]:
        group_of = self.group_of.cpu().numpy()
        fields = self.group_field.cpu().numpy()
        weight = self.weight.detach().cpu().numpy()
        keep = self.keep.cpu().numpy()
        offsets = self.offsets.cpu().numpy()
        layout = self.layout()
        out: dict[str, np.ndarray] = {}
        for g in np.flatnonzero(keep.any(axis=1)):
            f = int(fields[g])
            rows = np.flatnonzero(group_of == g)  # sorted global rows
            dims = np.flatnonzero(keep[g])
            out[f"group{g}.header"] = np.array([f, rows.size, dims.size], dtype=np.int32)
            out[f"group{g}.dims"] = dims.astype(index_dtype(self.dim))
            out[f"group{g}.weight"] = np.ascontiguousarray(weight[np.ix_(rows, dims)])
            card = self.cardinalities[f]
            if layout.bitmap[g]:
                bits = torch.zeros(card, dtype=torch.int64)
                bits[torch.from_numpy(rows - offsets[f])] = 1
                out[f"group{g}.bitmap"] = pack_bits(bits, 1).numpy()
                out[f"group{g}.rank"] = block_ranks(bits).numpy()
            elif layout.key_bytes[g]:
                out[f"group{g}.ids"] = (rows - offsets[f]).astype(index_dtype(card))
        return out

    def describe(self) -> dict[str, object]:
        layout = self.layout()
        kept = self.kept_dims()
        rows = layout.rows
        per_field: list[float] = []
        for f, card in enumerate(self.cardinalities):
            mask = layout.fields == f
            per_field.append(round(float((kept[mask] * rows[mask]).sum()) / card, 3))
        return {
            "n_groups": self.n_groups,
            "gate_lr_mult": self.gate_lr_mult,
            "searched": self._is_searched,
            "group_rows": rows.tolist(),
            "kept_dims": kept.tolist(),
            "mean_dims_per_field": per_field,
            "kept_fraction": round(
                float((kept * rows).sum()) / (sum(self.cardinalities) * self.dim), 4
            ),
            **self._describe_extra(),
        }

    def _describe_extra(self) -> Mapping[str, object]:
        return {}
