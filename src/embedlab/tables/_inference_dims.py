"""Inference modules of exported tables that keep a different number of dims per field or group.

``optembed`` (kept rows per field at the field's dim), ``dnis`` / ``autosrh`` (kept dims per
frequency group) and ``autodim`` (one candidate dim per field, projected to ``dim``). As in
:mod:`embedlab.tables._inference`: validated int64 ids ``(batch, n_fields)`` in,
``(batch, n_fields, dim)`` float32 out, the trained table's eval values, no data-dependent
control flow.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from embedlab.tables._inference import IdMap, project

__all__ = ["ChosenDims", "GroupedDims", "PrunedRows"]


class PrunedRows(nn.Module):
    """``optembed``: field ``f`` stores its kept rows at ``d_f`` values, found through its id
    map (:class:`IdMap`); other ids and dims ``>= d_f`` read zero."""

    def __init__(self, values: Sequence[torch.Tensor], maps: Sequence[IdMap], dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.values = nn.ParameterList(nn.Parameter(v, requires_grad=False) for v in values)
        self.maps = nn.ModuleList(maps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        outs = []
        for f, (values, id_map) in enumerate(zip(self.values, self.maps, strict=True)):
            kept, d = values.shape
            if kept == 0 or d == 0:
                outs.append(torch.zeros(ids.shape[0], self.dim, device=ids.device))
                continue
            present, row = id_map(ids[:, f])
            v = values[row.clamp(max=kept - 1)]  # (batch, d_f)
            v = torch.where(present.unsqueeze(-1), v, torch.zeros_like(v))
            outs.append(nn.functional.pad(v, (0, self.dim - d)))
        return torch.stack(outs, dim=1)


class GroupedDims(nn.Module):
    """``dnis`` / ``autosrh``: every stored group holds the membership of its ids (an
    :class:`IdMap`: none when it is the whole field, sorted ids or a bitmap with ranks),
    its kept dims and their weights; an id reads its group's weights at the kept dims and
    zeros elsewhere (ids of unstored groups read zeros)."""

    def __init__(
        self,
        n_fields: int,
        dim: int,
        group_fields: Sequence[int],
        maps: Sequence[IdMap],
        dims: Sequence[torch.Tensor],
        weights: Sequence[torch.Tensor],
    ) -> None:
        super().__init__()
        self.n_fields, self.dim = n_fields, dim
        self.group_fields = list(group_fields)
        self.maps = nn.ModuleList(maps)
        for g, (d, w) in enumerate(zip(dims, weights, strict=True)):
            self.register_buffer(f"dims{g}", d)
            self.register_buffer(f"weight{g}", w)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        zeros = torch.zeros(ids.shape[0], self.dim, device=ids.device)
        acc = [zeros] * self.n_fields
        for g, (f, id_map) in enumerate(zip(self.group_fields, self.maps, strict=True)):
            x = ids[:, f].contiguous()
            weight: torch.Tensor = getattr(self, f"weight{g}")
            dims: torch.Tensor = getattr(self, f"dims{g}")
            present, pos = id_map(x)
            pos = pos.clamp(max=weight.shape[0] - 1)
            # copy (not add) the kept dims of the ids this group holds: values stay bit-exact
            values = zeros.index_copy(1, dims, weight[pos])
            held = present.unsqueeze(-1) & zeros.bool().index_fill(1, dims, True)
            acc[f] = torch.where(held, values, acc[f])
        return torch.stack(acc, dim=1)


class ChosenDims(nn.Module):
    """``autodim``: field ``f`` reads its ``(card_f, d_f)`` table projected by ``(d_f, dim)``
    (:func:`~embedlab.tables._inference.project`), or its folded ``(card_f, dim)`` table."""

    def __init__(
        self, tables: Sequence[torch.Tensor], projections: Sequence[torch.Tensor | None]
    ) -> None:
        super().__init__()
        self.tables = nn.ParameterList(nn.Parameter(t, requires_grad=False) for t in tables)
        self.folded = [p is None for p in projections]
        self.projections = nn.ParameterList(
            nn.Parameter(torch.zeros(0) if p is None else p, requires_grad=False)
            for p in projections
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        outs = []
        for f, (table, proj) in enumerate(zip(self.tables, self.projections, strict=True)):
            e = table[ids[:, f]]
            outs.append(e if self.folded[f] else project(e, proj))
        return torch.stack(outs, dim=1)
