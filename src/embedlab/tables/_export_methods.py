"""The export hooks of the methods whose training state is not their deployable form.

Each ``*_tensors(table)`` returns the deployable tensors at the dtypes ``memory_bytes()``
counts (their bytes sum to it) and the JSON structure needed to read them; each
``*_module(config, tensors, check)`` checks those tensors (dtypes, shapes, ranges) and
builds the inference module (:mod:`embedlab.tables._inference`,
:mod:`embedlab.tables._inference_dims`). The table classes call them from their
``_export_tensors`` / ``_from_export`` overrides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from embedlab.tables._bits import index_bits, pack_bits, packed_bytes, unpack_bits
from embedlab.tables._export_dims import (
    chosen_module,
    chosen_tensors,
    grouped_module,
    grouped_tensors,
    pruned_module,
    pruned_tensors,
)
from embedlab.tables._export_util import (
    EMPTY_I32,
    EMPTY_U8,
    Exported,
    bitmap_ok,
    block_ranks,
    int_list,
    names,
    structure_int,
)
from embedlab.tables._inference import (
    IdMap,
    PackedRows,
    PointerRows,
    PooledRows,
    ProductCodes,
    QuantizedRows,
    SparseMatrix,
)
from embedlab.tables._sparse import RANK_BLOCK_BITS, sparse_formats

if TYPE_CHECKING:
    from embedlab.tables._export_util import ExportCheck, ExportConfig

__all__ = ["HOOKS"]


# --- int8 / int16 ---------------------------------------------------------------------
def quantized_tensors(table: Any) -> Exported:
    q = table.export_quantized()
    return q, {"rows": list(table.rows)}


def quantized_module(
    cls: Any, cfg: ExportConfig, tensors: Mapping[str, torch.Tensor], check: ExportCheck
) -> nn.Module:
    dtype, qmax = cls.code_dtype, (1 << (cls.bits - 1)) - 1
    cards = cfg.cardinalities
    rows = int_list(check, cfg, "rows", 1, cards)
    hashed = any(r < c for r, c in zip(rows, cards, strict=True))
    names(check, tensors, {"codes", "scales"} | ({"hash_coef"} if hashed else set()))
    codes = check.tensor(tensors, "codes", dtype, (sum(rows), cfg.dim))
    check.in_range("codes", codes, -qmax, qmax + 1)
    scales = check.tensor(tensors, "scales", torch.float32, (sum(rows),))
    coef = check.tensor(tensors, "hash_coef", torch.int64, (len(cards), 2)) if hashed else None
    return QuantizedRows(codes, scales, rows, cards, coef)


# --- alpt -------------------------------------------------------------------------------
def alpt_tensors(table: Any) -> Exported:
    return table.export_packed(), {"bits": table.bits}


def alpt_module(
    cls: Any, cfg: ExportConfig, tensors: Mapping[str, torch.Tensor], check: ExportCheck
) -> nn.Module:
    bits = structure_int(check, cfg, "bits", 1, 16)
    n_rows = sum(cfg.cardinalities)
    names(check, tensors, {"packed", "steps"})
    packed = check.tensor(tensors, "packed", torch.uint8, (n_rows, packed_bytes(cfg.dim, bits)))
    steps = check.tensor(tensors, "steps", torch.float32, (n_rows,))
    check.require(
        bool((steps > 0).all()), "steps", "be > 0", f"min {float(steps.min()) if n_rows else 0}"
    )
    return PackedRows(packed, steps, cfg.cardinalities, bits=bits, dim=cfg.dim)


# --- dedup ------------------------------------------------------------------------------
def dedup_tensors(table: Any) -> Exported:
    rows = table.weight.detach().cpu().clone()
    pointers = pack_bits(table.pointers.cpu(), table.pointer_bits)
    return {"rows": rows, "pointers": pointers}, {"unique_rows": table.unique_rows}


def dedup_module(
    cls: Any, cfg: ExportConfig, tensors: Mapping[str, torch.Tensor], check: ExportCheck
) -> nn.Module:
    n_ids = sum(cfg.cardinalities)
    unique = structure_int(check, cfg, "unique_rows", 1, n_ids)
    bits = index_bits(unique)
    names(check, tensors, {"rows", "pointers"})
    rows = check.tensor(tensors, "rows", torch.float32, (unique, cfg.dim))
    packed = check.tensor(tensors, "pointers", torch.uint8, (packed_bytes(n_ids, bits),))
    check.in_range("pointers", unpack_bits(packed, bits, n_ids), 0, unique)
    return PointerRows(rows, packed, cfg.cardinalities, bits)


# --- adaemb -----------------------------------------------------------------------------
def pooled_tensors(table: Any) -> Exported:
    return table.export_pooled(), {}


def pooled_module(
    cls: Any, cfg: ExportConfig, tensors: Mapping[str, torch.Tensor], check: ExportCheck
) -> nn.Module:
    n_ids = sum(cfg.cardinalities)
    names(check, tensors, {"keys", "rows"})
    keys = check.tensor(tensors, "keys", torch.int32 if n_ids < 2**31 else torch.int64)
    check.require(
        keys.dim() == 1 and keys.shape[0] >= 1,
        "tensor 'keys'",
        "be 1-D and non-empty",
        tuple(keys.shape),
    )
    check.tensor(tensors, "rows", torch.float32, (keys.shape[0], cfg.dim))
    check.in_range("keys", keys, 0, n_ids)
    check.sorted_unique("keys", keys)
    return PooledRows(keys, tensors["rows"], cfg.cardinalities)


# --- dpq / mgqe -------------------------------------------------------------------------
def codes_tensors(table: Any) -> Exported:
    plan = table.plan
    if len(plan.centroids) > 2:
        raise ValueError(f"{table.name} export supports at most 2 tiers, got {len(plan.centroids)}")
    structure = {
        "groups": plan.groups,
        "centroids": list(plan.centroids),
        "tier_sizes": list(plan.tier_sizes),
    }
    return table.export_packed(), structure


def codes_module(
    cls: Any, cfg: ExportConfig, tensors: Mapping[str, torch.Tensor], check: ExportCheck
) -> nn.Module:
    n_ids = sum(cfg.cardinalities)
    groups = structure_int(check, cfg, "groups", 1, cfg.dim)
    check.require(cfg.dim % groups == 0, "structure 'groups'", f"divide dim={cfg.dim}", groups)
    ks: Any = cfg.structure.get("centroids")
    sizes: Any = cfg.structure.get("tier_sizes")
    ok = isinstance(ks, list) and isinstance(sizes, list) and 1 <= len(ks) == len(sizes) <= 2
    ok = (
        ok
        and all(isinstance(k, int) and 2 <= k <= 256 for k in ks)
        and all(isinstance(n, int) and n >= 0 for n in sizes)
    )
    check.require(
        ok and sum(sizes) == n_ids,
        "structure 'centroids' / 'tier_sizes'",
        f"be 1 or 2 tiers of 2..256 centroids covering {n_ids} ids",
        [ks, sizes],
    )
    expected = (
        {"values"}
        | {f"codes_{t}" for t in range(len(ks))}
        | ({"tier_map", "tier_rank"} if len(ks) > 1 else set())
    )
    names(check, tensors, expected)
    values = check.tensor(tensors, "values", torch.float32, (groups, ks[0], cfg.dim // groups))
    codes, bits = [], []
    for t, (k, n) in enumerate(zip(ks, sizes, strict=True)):
        b = index_bits(k)
        packed = check.tensor(tensors, f"codes_{t}", torch.uint8, (packed_bytes(n * groups, b),))
        check.in_range(f"codes_{t}", unpack_bits(packed, b, n * groups), 0, k)
        codes.append(packed)
        bits.append(b)
    if len(ks) == 1:
        return ProductCodes(values, codes, bits, None, cfg.cardinalities)
    tier_map = check.tensor(tensors, "tier_map", torch.uint8, (packed_bytes(n_ids, 1),))
    n_blocks = -(-n_ids // RANK_BLOCK_BITS)
    tier_rank = check.tensor(tensors, "tier_rank", torch.int32, (n_blocks, 1))
    ones = torch.arange(n_blocks) * RANK_BLOCK_BITS - tier_rank[:, 0].to(torch.int64)
    bitmap_ok(check, "tier_map", tier_map, ones, n_ids, sizes[1])
    return ProductCodes(
        values, codes, bits, IdMap("bitmap", EMPTY_I32, tier_map), cfg.cardinalities
    )


# --- pep / deeplight --------------------------------------------------------------------
def masked_tensors(table: Any) -> Exported:
    eff = table.effective_weight().detach().cpu()
    present = eff != 0
    nnz = int(present.sum())
    formats = sparse_formats(nnz, *eff.shape)
    layout = min(formats, key=formats.__getitem__)
    if layout == "dense":
        tensors = {"values": eff.clone()}
    elif layout == "bitmask":
        mask = pack_bits(present.to(torch.int64), 1)  # (n_rows, ceil(dim / 8))
        bits = unpack_bits(mask, 1, 8 * mask.shape[1])
        tensors = {"mask": mask, "rank": block_ranks(bits), "values": eff[present]}
    else:
        pos = torch.nonzero(present.reshape(-1)).flatten()
        tensors = {"positions": pos.to(torch.int32), "values": eff.reshape(-1)[pos]}
    return tensors, {"layout": layout, "nnz": nnz}


def masked_module(
    cls: Any, cfg: ExportConfig, tensors: Mapping[str, torch.Tensor], check: ExportCheck
) -> nn.Module:
    n_rows, dim = sum(cfg.cardinalities), cfg.dim
    layout = cfg.structure.get("layout")
    check.require(
        layout in ("dense", "bitmask", "coo"),
        "structure 'layout'",
        "be dense, bitmask or coo",
        layout,
    )
    nnz = structure_int(check, cfg, "nnz", 0, n_rows * dim)
    empty = IdMap("none", EMPTY_I32, EMPTY_U8)
    if layout == "dense":
        names(check, tensors, {"values"})
        values = check.tensor(tensors, "values", torch.float32, (n_rows, dim))
        return SparseMatrix("dense", values, empty, cfg.cardinalities, dim)
    values = check.tensor(tensors, "values", torch.float32, (nnz,))
    if layout == "coo":
        names(check, tensors, {"positions", "values"})
        pos = check.tensor(tensors, "positions", torch.int32, (nnz,))
        check.in_range("positions", pos, 0, n_rows * dim)
        check.sorted_unique("positions", pos)
        index = IdMap("keys", pos, EMPTY_U8)
        return SparseMatrix("coo", values, index, cfg.cardinalities, dim)
    names(check, tensors, {"mask", "rank", "values"})
    mask = check.tensor(tensors, "mask", torch.uint8, (n_rows, -(-dim // 8)))
    n_bits = 8 * mask.numel()
    rank = check.tensor(tensors, "rank", torch.int32, (-(-n_bits // RANK_BLOCK_BITS),))
    bits = unpack_bits(mask, 1, 8 * mask.shape[1])
    check.require(int(bits[:, dim:].sum()) == 0, "mask padding bits", "be zero", "set bits")
    flat = mask.reshape(-1)
    bitmap_ok(check, "mask", flat, rank, n_bits, nnz)
    return SparseMatrix(
        "bitmask", values, IdMap("bitmap", EMPTY_I32, flat), cfg.cardinalities, dim, mask
    )


HOOKS: dict[str, tuple[Callable[[Any], Exported], Callable[..., nn.Module]]] = {
    "quantized": (quantized_tensors, quantized_module),
    "alpt": (alpt_tensors, alpt_module),
    "dedup": (dedup_tensors, dedup_module),
    "pooled": (pooled_tensors, pooled_module),
    "codes": (codes_tensors, codes_module),
    "masked": (masked_tensors, masked_module),
    "pruned": (pruned_tensors, pruned_module),
    "grouped": (grouped_tensors, grouped_module),
    "chosen": (chosen_tensors, chosen_module),
}
