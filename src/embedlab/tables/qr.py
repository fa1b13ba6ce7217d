"""Compositional embeddings with the quotient-remainder trick (Shi et al., KDD 2020)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, cast

import torch
from torch import nn

from embedlab._validation import BudgetError, check_choice, check_positive_float
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable
from embedlab.tables._registry import register_table

__all__ = ["QRTable"]

QROp = Literal["mult", "add", "concat"]
_OPS = ("mult", "add", "concat")


def _best_remainder(card: int) -> int:
    """The remainder-table size ``m`` minimising ``m + ceil(card / m)`` (about sqrt(card))."""
    top = math.isqrt(card) + 1
    return min(range(1, top + 1), key=lambda m: (m + -(-card // m), m))


def _keep_full(cards: Sequence[int], full_rows: int) -> list[bool]:
    """Fields whose full table fits in an equal share of the budget (repeated water-fill)."""
    keep = [False] * len(cards)
    free = list(range(len(cards)))
    left = full_rows
    changed = True
    while changed and free:
        changed = False
        share = left / len(free)
        for f in list(free):
            if cards[f] <= share:
                keep[f] = True
                left -= cards[f]
                free.remove(f)
                changed = True
    return keep


def _plan(
    cards: Sequence[int], dim: int, width: int, budget: int, keep_full: Sequence[bool]
) -> tuple[int, list[int], int]:
    """Smallest collision count ``k`` that fits; ``m[f] = 0`` marks a full field.

    Returns ``(k, m, bytes)``; ``bytes > budget`` when even the largest ``k`` does not fit.
    """
    best = [_best_remainder(c) for c in cards]
    k_max = max(best)
    total = 0
    ms: list[int] = []
    for k in range(1, k_max + 1):
        ms, total = [], 0
        for c, b, full in zip(cards, best, keep_full, strict=True):
            m = min(k, b)
            qr_bytes = (m + -(-c // m)) * width * FLOAT32_BYTES
            full_bytes = c * dim * FLOAT32_BYTES
            if full or qr_bytes >= full_bytes:
                ms.append(0)
                total += full_bytes
            else:
                ms.append(m)
                total += qr_bytes
        if total <= budget:
            return k, ms, total
    return k_max, ms, total


@register_table("qr")
class QRTable(EmbeddingTable):
    """Quotient-remainder compositional embeddings.

    Field ``f`` with remainder size ``m_f`` has a remainder table of ``m_f`` rows
    indexed by ``id % m_f`` and a quotient table of ``ceil(card_f / m_f)`` rows
    indexed by ``id // m_f``; the two rows are combined by ``op``: elementwise
    product (``"mult"``), sum (``"add"``) or concatenation of two ``dim / 2``
    halves (``"concat"``). Every id gets a unique pair of rows, so ids never
    fully collide.

    Budget: one collision count ``k`` is shared by the fields, ``m_f = min(k, m*_f)``
    with ``m*_f ~ sqrt(card_f)`` the size that minimises the field's rows; the
    smallest ``k`` that fits the budget is chosen. Fields whose full table fits in
    an equal share of the budget stay full (as DLRM's cardinality threshold), and so
    does any field where the two tables would not be smaller than the full one.
    When even ``m_f = m*_f`` everywhere does not fit, :class:`BudgetError` is raised.

    Shi et al., "Compositional Embeddings Using Complementary Partitions for
    Memory-Efficient Recommendation Systems", KDD 2020.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: embedding dimension (even for ``op="concat"``).
        compression: use at most ``full_bytes / compression`` bytes.
        seed: seeds the initialisation.
        op: how the remainder and quotient rows combine.
        init_std: std of the combined embedding at initialisation; for ``"mult"``
            both factors are drawn with std ``sqrt(init_std)`` so the product has
            std ``init_std`` (two factors of std ``init_std`` would give ``1e-4``).

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = QRTable([Field("user", 957), Field("item", 4082)], dim=16, compression=10)
        >>> table(torch.tensor([[3, 4000]])).shape
        torch.Size([1, 2, 16])
    """

    strict_ids = True
    qr_cols: torch.Tensor
    full_cols: torch.Tensor
    inv_perm: torch.Tensor
    m: torch.Tensor
    rem_offsets: torch.Tensor
    quo_offsets: torch.Tensor
    full_offsets: torch.Tensor

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        op: QROp = "mult",
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        self.op = cast(QROp, check_choice("op", op, _OPS))
        self.init_std = check_positive_float("init_std", init_std)
        if self.op == "concat" and self.dim % 2:
            raise ValueError(f"dim must be even for op='concat', got {self.dim}")
        width = self.dim // 2 if self.op == "concat" else self.dim
        cards = self.cardinalities
        keep = _keep_full(cards, self.budget_bytes // (self.dim * FLOAT32_BYTES))
        k, ms, total = _plan(cards, self.dim, width, self.budget_bytes, keep)
        if total > self.budget_bytes:
            k, ms, total = _plan(cards, self.dim, width, self.budget_bytes, [False] * len(cards))
        if total > self.budget_bytes:
            raise BudgetError(
                f"qr cannot reach compression {self.compression:g} for these fields: "
                f"needs at least {total} bytes, budget is {self.budget_bytes}"
            )
        self.collisions = k
        self.remainder_rows = ms
        self.quotient_rows = [-(-c // m) if m else 0 for c, m in zip(cards, ms, strict=True)]

        qr = [f for f, m in enumerate(ms) if m]
        full = [f for f, m in enumerate(ms) if not m]
        order = qr + full
        inv = [order.index(f) for f in range(self.n_fields)]
        self.register_buffer("qr_cols", torch.tensor(qr, dtype=torch.int64), persistent=False)
        self.register_buffer("full_cols", torch.tensor(full, dtype=torch.int64), persistent=False)
        self.register_buffer("inv_perm", torch.tensor(inv, dtype=torch.int64), persistent=False)
        m_t = torch.tensor([ms[f] for f in qr], dtype=torch.int64)
        q_t = torch.tensor([self.quotient_rows[f] for f in qr], dtype=torch.int64)
        c_t = torch.tensor([cards[f] for f in full], dtype=torch.int64)
        self.register_buffer("m", m_t, persistent=False)
        self.register_buffer("rem_offsets", torch.cumsum(m_t, 0) - m_t, persistent=False)
        self.register_buffer("quo_offsets", torch.cumsum(q_t, 0) - q_t, persistent=False)
        self.register_buffer("full_offsets", torch.cumsum(c_t, 0) - c_t, persistent=False)

        gen = torch.Generator().manual_seed(self.seed)
        factor_std = {
            "mult": math.sqrt(self.init_std),
            "add": self.init_std / math.sqrt(2.0),
            "concat": self.init_std,
        }[self.op]
        self.rem_weight = nn.Parameter(torch.empty(int(m_t.sum()), width))
        self.quo_weight = nn.Parameter(torch.empty(int(q_t.sum()), width))
        self.full_weight = nn.Parameter(torch.empty(int(c_t.sum()), self.dim))
        with torch.no_grad():
            self.rem_weight.normal_(0.0, factor_std, generator=gen)
            self.quo_weight.normal_(0.0, factor_std, generator=gen)
            self.full_weight.normal_(0.0, self.init_std, generator=gen)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        parts: list[torch.Tensor] = []
        if self.qr_cols.numel():
            x = ids[:, self.qr_cols]  # (batch, n_qr)
            rem = nn.functional.embedding(x % self.m + self.rem_offsets, self.rem_weight)
            quo = nn.functional.embedding(x // self.m + self.quo_offsets, self.quo_weight)
            if self.op == "mult":
                parts.append(rem * quo)
            elif self.op == "add":
                parts.append(rem + quo)
            else:
                parts.append(torch.cat([rem, quo], dim=-1))
        if self.full_cols.numel():
            x = ids[:, self.full_cols] + self.full_offsets  # (batch, n_full)
            parts.append(nn.functional.embedding(x, self.full_weight))
        # (batch, n_qr + n_full, dim) -> the fields' own order
        return torch.cat(parts, dim=1)[:, self.inv_perm]

    def describe(self) -> dict[str, object]:
        return {
            "op": self.op,
            "collisions": self.collisions,
            "remainder_rows": list(self.remainder_rows),
            "quotient_rows": list(self.quotient_rows),
            "full_fields": [
                f.name for f, m in zip(self.fields, self.remainder_rows, strict=True) if not m
            ],
        }
