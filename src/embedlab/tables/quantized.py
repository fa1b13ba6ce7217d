"""Low-precision (int8 / int16) embedding tables trained with stochastic rounding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import torch
from torch import nn

from embedlab._validation import check_positive_float
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable
from embedlab.tables._budget import HASH_COEF_BYTES, hashed_local_rows, plan_rows
from embedlab.tables._hashing import hash_coefficients
from embedlab.tables._registry import register_table

__all__ = ["Int8Table", "Int16Table", "QuantizedTable"]


class QuantizedTable(EmbeddingTable):
    """Rows stored as ``bits``-bit integers with one float32 scale per row.

    Training keeps a float32 master copy (``weight``) that always lies on the
    integer grid: at construction and after every optimizer step
    (:meth:`on_step`) each row is re-quantised symmetrically,
    ``scale = max|row| / (2**(bits-1) - 1)``, with *stochastic* rounding
    (``floor(x / scale + u)``, ``u ~ U[0, 1)``, unbiased), and the dequantised
    values are written back in place. The deployable form is the integer codes
    plus the scales (:meth:`export_quantized` / :meth:`load_quantized`), and
    :meth:`memory_bytes` reports that form, not the float32 master copy.

    Budget: precision alone divides memory by ``4 * dim / (bits/8 * dim + 4)``
    (3.2x for int8 at dim 16). When the budget asks for more, rows are also
    hashed: ``(budget - 16 * n_fields) // (dim * bits/8 + 4)`` rows are shared
    out as in the ``hash`` table (fields within their fair share keep one row per
    id, the others are hashed into rows in proportion to cardinality), and
    ``describe()`` reports ``hashed=True``. Ids are still checked against the
    cardinality (``strict_ids = True``).

    Stochastic-rounding low-precision training, as the INT8/INT16 baselines of
    the VLDB 2024 benchmark (Zhang et al., "Experimental Analysis of Large-scale
    Learnable Vector Storage Compression"); ALPT (Li et al., AAAI 2023).

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: embedding dimension.
        compression: use at most ``full_bytes / compression`` bytes.
        seed: seeds the initialisation, the hash functions and the rounding noise.
        init_std: std of the normal initialisation before the first quantisation.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32; codes
        ``(rows, dim)`` int8/int16, scales ``(rows,)`` float32.
    """

    export_format = "quantized"
    bits: ClassVar[int] = 8
    code_dtype: ClassVar[torch.dtype] = torch.int8
    offsets: torch.Tensor
    field_rows: torch.Tensor
    field_cards: torch.Tensor
    hashed_mask: torch.Tensor
    scale: torch.Tensor
    hash_coef: torch.Tensor | None

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        self.init_std = check_positive_float("init_std", init_std)
        cards = self.cardinalities
        row_bytes = self.dim * self.code_bytes + FLOAT32_BYTES
        if sum(cards) * row_bytes <= self.budget_bytes:
            rows = list(cards)
        else:
            rows = plan_rows(
                self.name,
                cards,
                self.budget_bytes,
                row_bytes,
                overhead_bytes=HASH_COEF_BYTES * self.n_fields,
                compression=self.compression,
            )
        self.rows: list[int] = rows
        self.hashed = any(r < c for r, c in zip(rows, cards, strict=True))
        rows_t = torch.tensor(rows, dtype=torch.int64)
        self.register_buffer("offsets", torch.cumsum(rows_t, 0) - rows_t, persistent=False)
        self.register_buffer("field_rows", rows_t, persistent=False)
        self.register_buffer("field_cards", torch.tensor(cards), persistent=False)
        mask = torch.tensor([r < c for r, c in zip(rows, cards, strict=True)])
        self.register_buffer("hashed_mask", mask, persistent=False)
        coef = hash_coefficients(self.n_fields, self.seed) if self.hashed else None
        self.register_buffer("hash_coef", coef)
        n_rows = sum(rows)
        self.register_buffer("scale", torch.ones(n_rows))
        self.weight = nn.Parameter(torch.empty(n_rows, self.dim))
        with torch.no_grad():
            self.weight.normal_(0.0, self.init_std, generator=torch.Generator().manual_seed(seed))
        self._gen: torch.Generator | None = None
        self.quantize()

    # --- quantisation -------------------------------------------------------
    @property
    def code_bytes(self) -> int:
        """Bytes of one stored code: ``bits // 8``."""
        return self.bits // 8

    @property
    def qmax(self) -> int:
        """Largest code magnitude: ``2**(bits - 1) - 1`` (127 for 8 bits)."""
        return (1 << (self.bits - 1)) - 1

    def _generator(self, device: torch.device) -> torch.Generator:
        if self._gen is None or self._gen.device != device:
            self._gen = torch.Generator(device=device).manual_seed(self.seed)
        return self._gen

    @torch.no_grad()
    def quantize(self) -> None:
        """Snap every row of ``weight`` to its ``bits``-bit grid with stochastic rounding."""
        w = self.weight
        maxabs = w.abs().amax(dim=1)
        scale = torch.where(maxabs > 0, maxabs / self.qmax, torch.ones_like(maxabs))
        x = w / scale.unsqueeze(1)  # (rows, dim) in [-qmax, qmax]
        # Values already on the grid (up to float32 error) stay put, so quantising is idempotent.
        near = x.round()
        on_grid = (x - near).abs() <= self.qmax * 2.0**-20
        noise = torch.rand(x.shape, generator=self._generator(w.device), device=w.device)
        q = torch.where(on_grid, near, torch.floor(x + noise)).clamp_(-self.qmax, self.qmax)
        w.copy_(q * scale.unsqueeze(1))
        self.scale.copy_(scale)

    def on_step(self, step: int) -> None:
        self.quantize()

    def export_quantized(self) -> dict[str, torch.Tensor]:
        """The deployable form: ``codes (rows, dim)`` int, ``scales (rows,)`` float32, and
        ``hash_coef (n_fields, 2)`` int64 when rows are hashed."""
        with torch.no_grad():
            codes = torch.round(self.weight / self.scale.unsqueeze(1)).to(self.code_dtype)
        out = {"codes": codes.cpu(), "scales": self.scale.detach().cpu().clone()}
        if self.hash_coef is not None:
            out["hash_coef"] = self.hash_coef.cpu().clone()
        return out

    @torch.no_grad()
    def load_quantized(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Load the output of :meth:`export_quantized` into this table (same configuration)."""
        expected = {"codes", "scales"} | ({"hash_coef"} if self.hash_coef is not None else set())
        if set(tensors) != expected:
            raise ValueError(f"tensors must have keys {sorted(expected)}, got {sorted(tensors)}")
        codes, scales = tensors["codes"], tensors["scales"]
        if codes.dtype != self.code_dtype or tuple(codes.shape) != tuple(self.weight.shape):
            raise ValueError(
                f"codes must be {self.code_dtype} of shape {tuple(self.weight.shape)}, "
                f"got {codes.dtype} of shape {tuple(codes.shape)}"
            )
        if scales.dtype != torch.float32 or tuple(scales.shape) != tuple(self.scale.shape):
            raise ValueError(
                f"scales must be float32 of shape {tuple(self.scale.shape)}, "
                f"got {scales.dtype} of shape {tuple(scales.shape)}"
            )
        if self.hash_coef is not None:
            self.hash_coef.copy_(tensors["hash_coef"])
        scales = scales.to(self.scale.device)
        self.weight.copy_(codes.to(self.weight.device, torch.float32) * scales.unsqueeze(1))
        self.scale.copy_(scales)

    @classmethod
    def from_quantized(
        cls,
        fields: Sequence[Field],
        dim: int,
        tensors: Mapping[str, torch.Tensor],
        *,
        compression: float = 1.0,
        seed: int = 0,
    ) -> QuantizedTable:
        """Build a table from :meth:`export_quantized` output (same fields, dim, compression)."""
        table = cls(fields, dim, compression=compression, seed=seed)
        table.load_quantized(tensors)
        return table

    # --- protocol -----------------------------------------------------------
    def memory_bytes(self) -> int:
        """Codes at ``bits / 8`` bytes, one float32 scale per row, hash coefficients if hashed."""
        n_rows = sum(self.rows)
        coef = 0 if self.hash_coef is None else self.hash_coef.numel() * 8
        return n_rows * self.dim * self.code_bytes + n_rows * FLOAT32_BYTES + coef

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        if self.hash_coef is None:
            local = ids
        else:
            local = hashed_local_rows(
                ids, self.hash_coef, self.field_rows, self.hashed_mask, self.field_cards
            )
        return nn.functional.embedding(local + self.offsets, self.weight)

    def describe(self) -> dict[str, object]:
        return {"bits": self.bits, "buckets": list(self.rows), "hashed": self.hashed}


@register_table("int8")
class Int8Table(QuantizedTable):
    """8-bit table: codes in ``[-127, 127]``, one float32 scale per row.

    See :class:`QuantizedTable` for training, budget and hashing.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = Int8Table([Field("user", 957), Field("ctx", 7)], dim=16, compression=2)
        >>> table.describe()
        {'bits': 8, 'buckets': [957, 7], 'hashed': False}
        >>> table(torch.tensor([[3, 6]])).shape
        torch.Size([1, 2, 16])
    """

    bits = 8
    code_dtype = torch.int8


@register_table("int16")
class Int16Table(QuantizedTable):
    """16-bit table: codes in ``[-32767, 32767]``, one float32 scale per row.

    See :class:`QuantizedTable` for training, budget and hashing.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = Int16Table([Field("user", 957), Field("ctx", 7)], dim=16, compression=10)
        >>> table.describe()["hashed"]
        True
    """

    bits = 16
    code_dtype = torch.int16
