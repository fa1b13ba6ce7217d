"""Export hooks of the tables that keep a different number of dims per field or group.

``optembed`` (``"pruned"``), ``dnis`` / ``autosrh`` (``"grouped"``) and ``autodim``
(``"chosen"``); see :mod:`embedlab.tables._export_methods` for the contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from embedlab.tables._bits import pack_bits
from embedlab.tables._dim_groups import bitmap_bytes
from embedlab.tables._export_util import (
    EMPTY_I32,
    EMPTY_U8,
    Exported,
    bitmap_ok,
    block_ranks,
    int_list,
    names,
)
from embedlab.tables._inference import IdMap, offsets_of, project
from embedlab.tables._inference_dims import ChosenDims, GroupedDims, PrunedRows
from embedlab.tables._sparse import RANK_BLOCK_BITS

if TYPE_CHECKING:
    from embedlab.tables._export_util import ExportCheck, ExportConfig

__all__ = [
    "chosen_module",
    "chosen_tensors",
    "folds",
    "grouped_module",
    "grouped_tensors",
    "pruned_module",
    "pruned_tensors",
]


# --- optembed ---------------------------------------------------------------------------
def _map_kind(kept: int, card: int) -> str:
    bitmap = -(-card // 8) + 4 * -(-card // RANK_BLOCK_BITS)
    return "none" if kept >= card else ("keys" if 4 * kept <= bitmap else "bitmap")


def pruned_tensors(table: Any) -> Exported:
    keep = table.kept_rows().cpu()
    weight = table.weight.detach().cpu()
    dims = [int(d) for d in table.dims.tolist()]
    offsets = offsets_of(table.cardinalities).tolist()
    parts: dict[str, list[torch.Tensor]] = {"values": [], "keys": [], "bitmap": [], "rank": []}
    kept, kinds = [], []
    for card, off, d in zip(table.cardinalities, offsets, dims, strict=True):
        rows = torch.nonzero(keep[off : off + card]).flatten()
        kept.append(int(rows.numel()))
        kinds.append(_map_kind(kept[-1], card))
        parts["values"].append(weight[off + rows, :d].reshape(-1))
        if kinds[-1] == "keys":
            parts["keys"].append(rows.to(torch.int32))
        elif kinds[-1] == "bitmap":
            bits = torch.zeros(card, dtype=torch.int64)
            bits[rows] = 1
            parts["bitmap"].append(pack_bits(bits, 1))
            parts["rank"].append(block_ranks(bits))
    empty = {"values": torch.zeros(0), "keys": EMPTY_I32, "bitmap": EMPTY_U8, "rank": EMPTY_I32}
    tensors = {k: torch.cat(v) if v else empty[k] for k, v in parts.items()}
    return tensors, {"dims": dims, "kept": kept, "maps": kinds}


def pruned_module(
    cls: Any, cfg: ExportConfig, tensors: Mapping[str, torch.Tensor], check: ExportCheck
) -> nn.Module:
    cards = cfg.cardinalities
    dims = int_list(check, cfg, "dims", 1, [cfg.dim] * len(cards))
    kept = int_list(check, cfg, "kept", 0, cards)
    kinds = cfg.structure.get("maps")
    want = [_map_kind(k, c) for k, c in zip(kept, cards, strict=True)]
    check.require(kinds == want, "structure 'maps'", f"be {want}", kinds)
    names(check, tensors, {"values", "keys", "bitmap", "rank"})
    sizes = {
        "values": sum(k * d for k, d in zip(kept, dims, strict=True)),
        "keys": sum(k for k, m in zip(kept, want, strict=True) if m == "keys"),
        "bitmap": sum(-(-c // 8) for c, m in zip(cards, want, strict=True) if m == "bitmap"),
        "rank": sum(
            -(-c // RANK_BLOCK_BITS) for c, m in zip(cards, want, strict=True) if m == "bitmap"
        ),
    }
    dtypes = {
        "values": torch.float32,
        "keys": torch.int32,
        "bitmap": torch.uint8,
        "rank": torch.int32,
    }
    flat = {k: check.tensor(tensors, k, dtypes[k], (n,)) for k, n in sizes.items()}
    at = dict.fromkeys(sizes, 0)

    def take(name: str, n: int) -> torch.Tensor:
        at[name] += n
        return flat[name][at[name] - n : at[name]]

    values, maps = [], []
    for f, (card, k, d, kind) in enumerate(zip(cards, kept, dims, want, strict=True)):
        values.append(take("values", k * d).reshape(k, d))
        keys, bitmap, rank = torch.zeros(0, dtype=torch.int32), EMPTY_U8, EMPTY_I32
        if kind == "keys":
            keys = take("keys", k)
            check.in_range(f"keys of field {f}", keys, 0, card)
            check.sorted_unique(f"keys of field {f}", keys)
        elif kind == "bitmap":
            bitmap, rank = take("bitmap", -(-card // 8)), take("rank", -(-card // RANK_BLOCK_BITS))
            bitmap_ok(check, f"bitmap of field {f}", bitmap, rank, card, k)
        maps.append(IdMap(kind, keys, bitmap))
    return PrunedRows(values, maps, cfg.dim)


# --- dnis / autosrh ---------------------------------------------------------------------
def grouped_tensors(table: Any) -> Exported:
    arrays = table.export_arrays()
    parts: dict[str, list[np.ndarray]] = {"header": [], "dims": [], "weight": []}
    for name, a in arrays.items():
        kind = name.split(".")[1]
        key = f"ids_{a.dtype.name.removeprefix('uint')}" if kind == "ids" else kind
        parts.setdefault(key, []).append(a.reshape(-1))
    tensors = {k: torch.from_numpy(np.concatenate(v)) for k, v in parts.items() if v}
    tensors["header"] = tensors["header"].reshape(-1, 3)
    return tensors, {}


def grouped_module(
    cls: Any, cfg: ExportConfig, tensors: Mapping[str, torch.Tensor], check: ExportCheck
) -> nn.Module:
    cards, dim = cfg.cardinalities, cfg.dim
    header = check.tensor(tensors, "header", torch.int32)
    check.require(
        header.dim() == 2 and header.shape[1] == 3,
        "tensor 'header'",
        "have shape (groups, 3)",
        tuple(header.shape),
    )
    id_dtypes = {8: torch.uint8, 16: torch.uint16, 32: torch.uint32}
    dim_dtype = torch.uint8 if dim <= 256 else torch.uint16
    fields, ids, dims, weights = [], [], [], []
    at: dict[str, int] = {"header": header.numel()}

    def take(name: str, dtype: torch.dtype, n: int) -> torch.Tensor:
        t = (
            check.tensor(tensors, name, dtype)
            if n or name in tensors
            else torch.zeros(0, dtype=dtype)
        )
        start = at.get(name, 0)
        check.require(
            start + n <= t.numel(),
            f"tensor {name!r}",
            f"hold at least {start + n} values",
            t.numel(),
        )
        at[name] = start + n
        return t[start : start + n]

    for g, (f, rows, k) in enumerate(header.tolist()):
        check.require(
            0 <= f < len(cards) and 1 <= rows <= cards[f] and 1 <= k <= dim,
            f"header row {g}",
            f"be (field < {len(cards)}, 1 <= rows <= cardinality, 1 <= dims <= {dim})",
            [f, rows, k],
        )
        d = take("dims", dim_dtype, k).to(torch.int64)
        check.in_range(f"dims of group {g}", d, 0, dim)
        check.sorted_unique(f"dims of group {g}", d)
        weights.append(take("weight", torch.float32, rows * k).reshape(rows, k))
        id_map = IdMap("none", EMPTY_I32, EMPTY_U8)
        width = next(w for w in (8, 16, 32) if cards[f] - 1 < 2**w)
        if rows < cards[f] and bitmap_bytes(cards[f]) < rows * width // 8:
            bitmap = take("bitmap", torch.uint8, -(-cards[f] // 8))
            rank = take("rank", torch.int32, -(-cards[f] // RANK_BLOCK_BITS))
            bitmap_ok(check, f"bitmap of group {g}", bitmap, rank, cards[f], rows)
            id_map = IdMap("bitmap", EMPTY_I32, bitmap)
        elif rows < cards[f]:
            keys = take(f"ids_{width}", id_dtypes[width], rows).to(torch.int64)
            check.in_range(f"ids of group {g}", keys, 0, cards[f])
            check.sorted_unique(f"ids of group {g}", keys)
            id_map = IdMap("keys", keys, EMPTY_U8)
        fields.append(f)
        ids.append(id_map)
        dims.append(d)
    for name, t in tensors.items():
        check.require(
            at.get(name, 0) == t.numel(),
            f"tensor {name!r}",
            f"hold exactly {at.get(name, 0)} values",
            t.numel(),
        )
    return GroupedDims(len(cards), dim, fields, ids, dims, weights)


# --- autodim ----------------------------------------------------------------------------
def folds(card: int, d: int, dim: int) -> bool:
    """Whether autodim stores field ``card x d`` folded: ``card * dim <= card * d + d * dim``."""
    return card * dim <= card * d + d * dim


def chosen_tensors(table: Any) -> Exported:
    tables, projections = [], []
    for f, (table_f, proj) in enumerate(table.chosen_blocks()):
        table_f, proj = table_f.detach().cpu(), proj.detach().cpu()
        if folds(table.cardinalities[f], proj.shape[0], table.dim):
            tables.append(project(table_f, proj).reshape(-1))
        else:
            tables.append(table_f.reshape(-1))
            projections.append(proj.reshape(-1))
    tensors = {
        "tables": torch.cat(tables),
        "projections": torch.cat(projections) if projections else torch.zeros(0),
    }
    return tensors, {"dims": list(table.dims)}


def chosen_module(
    cls: Any, cfg: ExportConfig, tensors: Mapping[str, torch.Tensor], check: ExportCheck
) -> nn.Module:
    cards, dim = cfg.cardinalities, cfg.dim
    dims = int_list(check, cfg, "dims", 1, [dim] * len(cards))
    fold = [folds(c, d, dim) for c, d in zip(cards, dims, strict=True)]
    n_tab = sum(c * (dim if fo else d) for c, d, fo in zip(cards, dims, fold, strict=True))
    n_proj = sum(d * dim for d, fo in zip(dims, fold, strict=True) if not fo)
    names(check, tensors, {"tables", "projections"})
    flat_t = check.tensor(tensors, "tables", torch.float32, (n_tab,))
    flat_p = check.tensor(tensors, "projections", torch.float32, (n_proj,))
    tables: list[torch.Tensor] = []
    projections: list[torch.Tensor | None] = []
    t_at = p_at = 0
    for c, d, fo in zip(cards, dims, fold, strict=True):
        width = dim if fo else d
        tables.append(flat_t[t_at : t_at + c * width].reshape(c, width))
        t_at += c * width
        projections.append(None if fo else flat_p[p_at : p_at + d * dim].reshape(d, dim))
        p_at += 0 if fo else d * dim
    return ChosenDims(tables, projections)


#: ``export_format`` of a table class -> its (tensors, module) hooks
