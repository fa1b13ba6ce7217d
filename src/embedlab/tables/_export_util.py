"""What the export hooks share: the header (:class:`ExportConfig`), the load checks
(:class:`ExportCheck`), checked structure entries and bitmap rank directories."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from embedlab.fields import Field
from embedlab.tables._bits import unpack_bits
from embedlab.tables._sparse import RANK_BLOCK_BITS

__all__ = [
    "DTYPES",
    "DTYPE_NAMES",
    "EMPTY_I32",
    "EMPTY_U8",
    "ExportCheck",
    "ExportConfig",
    "Exported",
    "bitmap_ok",
    "block_ranks",
    "int_list",
    "names",
    "split_blobs",
    "structure_int",
]

DTYPES: dict[str, torch.dtype] = {
    "f32": torch.float32,
    "i64": torch.int64,
    "i32": torch.int32,
    "i16": torch.int16,
    "i8": torch.int8,
    "u8": torch.uint8,
    "u16": torch.uint16,
    "u32": torch.uint32,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}

#: what an ``_export_tensors`` hook returns
Exported = tuple[dict[str, torch.Tensor], dict[str, Any]]
EMPTY_U8 = torch.zeros(0, dtype=torch.uint8)
EMPTY_I32 = torch.zeros(0, dtype=torch.int32)


@dataclass(frozen=True)
class ExportConfig:
    """What the header of an exported table says: enough to rebuild its inference module."""

    method: str
    fields: tuple[Field, ...]
    dim: int
    compression: float
    seed: int
    hyper: dict[str, Any] = field(default_factory=dict)
    structure: dict[str, Any] = field(default_factory=dict)

    @property
    def cardinalities(self) -> list[int]:
        return [f.cardinality for f in self.fields]


@dataclass(frozen=True)
class ExportCheck:
    """Raises the errors of a file being loaded: ``{file}: {field} must {rule}, got {value}``."""

    path: str

    def error(self, what: str, rule: str, value: object) -> ValueError:
        return ValueError(f"{self.path}: {what} must {rule}, got {value}")

    def require(self, ok: bool, what: str, rule: str, value: object) -> None:
        if not ok:
            raise self.error(what, rule, value)

    def tensor(
        self,
        tensors: Mapping[str, torch.Tensor],
        name: str,
        dtype: torch.dtype,
        shape: Iterable[int] | None = None,
    ) -> torch.Tensor:
        """Tensor ``name`` with ``dtype`` and (when given) ``shape``."""
        self.require(name in tensors, f"tensor {name!r}", "be present", sorted(tensors))
        t = tensors[name]
        self.require(t.dtype == dtype, f"tensor {name!r}", f"have dtype {dtype}", t.dtype)
        if shape is not None:
            want = tuple(shape)
            self.require(
                tuple(t.shape) == want, f"tensor {name!r}", f"have shape {want}", tuple(t.shape)
            )
        return t

    def in_range(self, name: str, values: torch.Tensor, low: int, high: int) -> None:
        """Every value of ``values`` lies in ``[low, high)``."""
        if values.numel():
            lo, hi = int(values.min()), int(values.max())
            self.require(
                low <= lo and hi < high, f"{name}", f"lie in [{low}, {high})", f"[{lo}, {hi}]"
            )

    def sorted_unique(self, name: str, values: torch.Tensor) -> None:
        if values.numel() > 1:
            ok = bool((values[1:] > values[:-1]).all())
            self.require(ok, name, "be strictly increasing", "a value out of order")

    def same_shapes(
        self, tensors: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
    ) -> None:
        """``tensors`` has exactly the names, dtypes and shapes of ``expected``."""
        self.require(
            set(tensors) == set(expected), "tensors", f"be {sorted(expected)}", sorted(tensors)
        )
        for name, want in expected.items():
            self.tensor(tensors, name, want.dtype, want.shape)


def block_ranks(bits: torch.Tensor, block_bits: int = RANK_BLOCK_BITS) -> torch.Tensor:
    """Rank directory of a flat 0/1 stream: set bits before each block, ``(n_blocks,)`` int32."""
    flat = bits.reshape(-1).to(torch.int64)
    before = torch.cumsum(flat, 0) - flat
    return before[::block_bits].to(torch.int32)


def int_list(
    check: ExportCheck, cfg: ExportConfig, key: str, low: int, highs: Sequence[int]
) -> list[int]:
    """Structure entry ``key``: one integer per field, field ``f``'s in ``[low, highs[f]]``."""
    v: Any = cfg.structure.get(key)
    ok = (
        isinstance(v, list)
        and len(v) == len(highs)
        and all(isinstance(x, int) and low <= x <= h for x, h in zip(v, highs, strict=True))
    )
    check.require(
        ok, f"structure {key!r}", f"be {len(highs)} integers in [{low}, {list(highs)}]", v
    )
    return list(v)


def structure_int(check: ExportCheck, cfg: ExportConfig, key: str, low: int, high: int) -> int:
    v: Any = cfg.structure.get(key)
    check.require(
        isinstance(v, int) and low <= v <= high,
        f"structure {key!r}",
        f"be an integer in [{low}, {high}]",
        v,
    )
    return int(v)


def names(check: ExportCheck, tensors: Mapping[str, torch.Tensor], names: set[str]) -> None:
    check.require(set(tensors) == names, "tensors", f"be {sorted(names)}", sorted(tensors))


def bitmap_ok(
    check: ExportCheck, name: str, bitmap: torch.Tensor, rank: torch.Tensor, n_bits: int, ones: int
) -> None:
    """A bitmap of ``n_bits`` (zero padded) with ``ones`` set bits and a matching rank directory."""
    bits = unpack_bits(bitmap, 1, 8 * bitmap.shape[0])
    check.require(int(bits[n_bits:].sum()) == 0, f"{name} padding bits", "be zero", "set bits")
    check.require(int(bits.sum()) == ones, f"{name} set bits", f"be {ones}", int(bits.sum()))
    want = block_ranks(bits[:n_bits])
    same = rank.shape == want.shape and torch.equal(rank.to(torch.int32), want)
    check.require(
        same,
        f"{name} rank directory",
        "count the set bits before each block of 512",
        "other counts",
    )


def split_blobs(
    blobs: Mapping[str, torch.Tensor], layout: Sequence[Any], check: ExportCheck
) -> dict[str, torch.Tensor]:
    """Cut the per-dtype blobs into the ``[name, dtype, shape]`` tensors of ``layout``, in
    order; every blob must be used up exactly and every float tensor must be finite."""
    used = dict.fromkeys(blobs, 0)
    out: dict[str, torch.Tensor] = {}
    for entry in layout:
        ok = isinstance(entry, list) and len(entry) == 3 and entry[1] in DTYPES
        check.require(ok, "layout entries", "be [name, dtype, shape]", entry)
        name, dtype, shape = entry
        ok = isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)
        check.require(ok, f"layout shape of {name!r}", "be a list of integers >= 0", shape)
        n = int(torch.Size(shape).numel())
        blob = blobs.get(dtype, torch.zeros(0, dtype=DTYPES[dtype]))
        have = blob.numel() - used.get(dtype, 0)
        check.require(n <= have, f"blob {dtype!r}", f"hold {n} more values for {name!r}", have)
        check.require(
            blob.dtype == DTYPES[dtype], f"blob {dtype!r}", f"be {DTYPES[dtype]}", blob.dtype
        )
        start = used.get(dtype, 0)
        out[name] = blob[start : start + n].reshape(shape).clone()
        used[dtype] = start + n
    for name, blob in blobs.items():
        want = used[name]
        check.require(
            want == blob.numel(), f"blob {name!r}", f"hold exactly {want} values", blob.numel()
        )
    for name, t in out.items():
        if t.is_floating_point():
            check.require(
                bool(torch.isfinite(t).all()), f"tensor {name!r}", "be finite", "non-finite"
            )
    return out
