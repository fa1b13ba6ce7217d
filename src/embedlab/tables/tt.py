"""TT-Rec: tensor-train factorised embedding tables (Yin et al., MLSys 2021)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from embedlab._validation import BudgetError, check_int, check_positive_float
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable
from embedlab.tables._registry import register_table

__all__ = ["TTTable", "factor_dim", "tt_shape"]


def factor_dim(dim: int) -> tuple[int, int, int]:
    """Split ``dim`` into three factors ``(d1, d2, d3)``, as balanced as possible, with the
    smallest in the middle core (whose size grows with rank squared). ``16 -> (2, 2, 4)``."""
    best: tuple[int, int, int] = (1, 1, dim)
    for a in range(1, dim + 1):
        if dim % a:
            continue
        for b in range(a, dim // a + 1):
            if (dim // a) % b:
                continue
            c = dim // (a * b)
            if c >= b and c - a < best[2] - best[0]:
                best = (a, b, c)
    a, b, c = best
    return b, a, c


def tt_shape(card: int, dims: tuple[int, int, int], rank: int) -> tuple[tuple[int, int, int], int]:
    """Row factors ``(n1, n2, n3)`` with ``n1 * n2 * n3 >= card`` that minimise the cores'
    float count at ``rank``; the factors stay within a factor 2 of ``card ** (1/3)``,
    as TT-Rec's balanced shapes. Returns ``(shape, n_floats)``."""
    d1, d2, d3 = dims
    cube = max(1.0, card ** (1.0 / 3.0))
    lo, hi = max(1, math.floor(cube / 2)), math.ceil(2 * cube) + 1
    n1, n2 = np.meshgrid(np.arange(lo, hi + 1), np.arange(lo, hi + 1), indexing="ij")
    n3 = -(-card // (n1 * n2))
    floats = rank * n1 * d1 + rank * rank * n2 * d2 + rank * n3 * d3
    i = int(np.argmin(floats))
    shape = (int(n1.flat[i]), int(n2.flat[i]), int(n3.flat[i]))
    return shape, int(floats.flat[i])


class _TTCores(nn.Module):
    """The three cores of one field: g1 ``(n1, d1, r)``, g2 ``(n2, r, d2, r)``, g3 ``(n3, r, d3)``
    (the paper's ``(1, n1, d1, r)``, ``(r, n2, d2, r)``, ``(r, n3, d3, 1)`` with the row
    index moved first so a batch of rows is one gather)."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        dims: tuple[int, int, int],
        rank: int,
        std: float,
        gen: torch.Generator,
    ) -> None:
        super().__init__()
        (n1, n2, n3), (d1, d2, d3) = shape, dims
        self.shape = shape
        self.g1 = nn.Parameter(torch.empty(n1, d1, rank).normal_(0.0, std, generator=gen))
        self.g2 = nn.Parameter(torch.empty(n2, rank, d2, rank).normal_(0.0, std, generator=gen))
        self.g3 = nn.Parameter(torch.empty(n3, rank, d3).normal_(0.0, std, generator=gen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, n2, n3 = self.shape
        i1, i2, i3 = x // (n2 * n3), (x // n3) % n2, x % n3  # x = (i1 * n2 + i2) * n3 + i3
        batch, (_, d1, r), (_, _, d2, _) = x.shape[0], self.g1.shape, self.g2.shape
        left = torch.bmm(self.g1[i1], self.g2[i2].reshape(batch, r, d2 * r))  # (batch, d1, d2*r)
        rows = torch.bmm(left.reshape(batch, d1 * d2, r), self.g3[i3])  # (batch, d1*d2, d3)
        # (batch, d1 * d2 * d3), index (a * d2 + c) * d3 + e; the width is spelled out so an
        # empty batch reshapes too
        return rows.reshape(batch, d1 * d2 * rows.shape[2])


class _Dense(nn.Module):
    def __init__(self, card: int, dim: int, std: float, gen: torch.Generator) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(card, dim).normal_(0.0, std, generator=gen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(x, self.weight)


@register_table("tt")
class TTTable(EmbeddingTable):
    """Tensor-train (TT-Rec) embedding tables, one per field.

    Field ``f``'s ``card_f x dim`` table is the TT matrix of three cores
    ``G1 (1, n1, d1, r)``, ``G2 (r, n2, d2, r)``, ``G3 (r, n3, d3, 1)`` with
    ``n1 * n2 * n3 >= card_f`` (the table is padded, the extra rows unused) and
    ``d1 * d2 * d3 = dim``. The row of id ``(i1, i2, i3)`` (mixed radix) is
    ``G1[:, i1] @ G2[:, i2] @ G3[:, i3]`` reshaped to ``dim``; a batch of rows is two
    batched matrix products.

    Budget: one TT rank ``r`` shared by the fields, the largest up to ``max_rank``
    that fits. A field whose cores would not be smaller than its full table
    (tiny fields) keeps a full table; every other field is factorised.
    :class:`BudgetError` when rank 1 does not fit.

    Initialisation follows TT-Rec's sampled-Gaussian scheme: every core entry is
    drawn with std ``(init_std / r) ** (1/3)`` so the reconstructed rows have std
    ``init_std`` (a row entry sums ``r**2`` products of three core entries).

    Yin et al., "TT-Rec: Tensor Train Compression for Deep Learning Recommendation
    Model Embeddings", MLSys 2021.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: embedding dimension.
        compression: use at most ``full_bytes / compression`` bytes.
        seed: seeds the initialisation.
        max_rank: the largest TT rank considered.
        init_std: std of the reconstructed rows at initialisation.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = TTTable([Field("user", 957), Field("item", 4082)], dim=16, compression=100)
        >>> table(torch.tensor([[3, 4000]])).shape
        torch.Size([1, 2, 16])
    """

    strict_ids = True

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        max_rank: int = 64,
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        self.max_rank = check_int("max_rank", max_rank, min_value=1)
        self.init_std = check_positive_float("init_std", init_std)
        self.dims = factor_dim(self.dim)
        budget = self.budget_bytes // FLOAT32_BYTES
        plan = self._plan(1)
        if sum(n for _, n in plan) > budget:
            need = sum(n for _, n in plan) * FLOAT32_BYTES
            raise BudgetError(
                f"tt cannot reach compression {self.compression:g} for these fields: "
                f"needs at least {need} bytes, budget is {self.budget_bytes}"
            )
        lo, hi = 1, self.max_rank  # largest feasible rank: memory is monotone in rank
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if sum(n for _, n in self._plan(mid)) <= budget:
                lo = mid
            else:
                hi = mid - 1
        self.rank = lo
        plan = self._plan(lo)
        self.shapes: list[tuple[int, int, int] | None] = [s for s, _ in plan]

        gen = torch.Generator().manual_seed(self.seed)
        core_std = (self.init_std / self.rank) ** (1.0 / 3.0)
        self.field_tables = nn.ModuleList()
        for card, shape in zip(self.cardinalities, self.shapes, strict=True):
            if shape is None:
                self.field_tables.append(_Dense(card, self.dim, self.init_std, gen))
            else:
                self.field_tables.append(_TTCores(shape, self.dims, self.rank, core_std, gen))

    def _plan(self, rank: int) -> list[tuple[tuple[int, int, int] | None, int]]:
        """Per field: TT row factors (None: full table) and float count at ``rank``."""
        out: list[tuple[tuple[int, int, int] | None, int]] = []
        for card in self.cardinalities:
            shape, floats = tt_shape(card, self.dims, rank)
            if floats >= card * self.dim:
                out.append((None, card * self.dim))
            else:
                out.append((shape, floats))
        return out

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        outs = [table(ids[:, f]) for f, table in enumerate(self.field_tables)]
        return torch.stack(outs, dim=1)  # (batch, n_fields, dim)

    def describe(self) -> dict[str, object]:
        return {
            "rank": self.rank,
            "dim_factors": list(self.dims),
            "row_factors": [list(s) if s else None for s in self.shapes],
        }
