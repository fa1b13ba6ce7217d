"""Unified Embedding: one shared table multiplexed across all fields (NeurIPS 2023)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from embedlab._validation import BudgetError, check_divides, check_positive_float
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable
from embedlab.tables._budget import HASH_COEF_BYTES
from embedlab.tables._hashing import hash_coefficients, universal_hash
from embedlab.tables._registry import register_table

__all__ = ["UnifiedEmbeddingTable"]


@register_table("ue")
class UnifiedEmbeddingTable(EmbeddingTable):
    """Feature multiplexing: every field hashes into one shared table.

    A single table of ``B`` rows of width ``dim / probes`` serves all fields.
    Field ``f`` looks up its id with ``probes`` hash functions of its own,
    ``h_{f,j}(id) = ((a_{f,j} id + b_{f,j}) mod p) mod B``, and concatenates the
    ``probes`` rows into one ``dim`` vector (multi-probe). Any non-negative id is
    accepted (``strict_ids = False``).

    Budget: the hash coefficients take ``16 * n_fields * probes`` bytes (they are
    persistent buffers, needed at inference); the rest buys
    ``B = (budget_bytes - coefficients) // (dim / probes * 4)`` rows.
    :class:`BudgetError` when not even one row fits.

    Coleman et al., "Unified Embedding: Battle-Tested Feature Representations for
    Web-Scale ML Systems", NeurIPS 2023.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: embedding dimension.
        compression: use at most ``full_bytes / compression`` bytes.
        seed: seeds the hash functions and the initialisation.
        probes: lookups per feature, each of width ``dim / probes``; must divide ``dim``.
        init_std: std of the normal initialisation.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> fields = [Field("user", 957), Field("item", 4082)]
        >>> table = UnifiedEmbeddingTable(fields, dim=16, compression=10, probes=2)
        >>> table(torch.tensor([[3, 10**9]])).shape
        torch.Size([1, 2, 16])
    """

    strict_ids = False
    hash_coef: torch.Tensor

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        probes: int = 1,
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        self.probes = check_divides("probes", probes, "dim", self.dim)
        self.init_std = check_positive_float("init_std", init_std)
        self.width = self.dim // self.probes
        coef_bytes = HASH_COEF_BYTES * self.n_fields * self.probes
        row_bytes = self.width * FLOAT32_BYTES
        self.buckets = (self.budget_bytes - coef_bytes) // row_bytes
        if self.buckets < 1:
            raise BudgetError(
                f"ue cannot reach compression {self.compression:g} for these fields: "
                f"needs at least {coef_bytes + row_bytes} bytes, budget is {self.budget_bytes}"
            )
        coef = hash_coefficients(self.n_fields * self.probes, self.seed)
        self.register_buffer("hash_coef", coef.reshape(self.n_fields, self.probes, 2))
        self.weight = nn.Parameter(torch.empty(self.buckets, self.width))
        gen = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            self.weight.normal_(0.0, self.init_std, generator=gen)

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Shared-table rows of ids: ``(batch, n_fields)`` -> ``(batch, n_fields, probes)``."""
        return universal_hash(ids.unsqueeze(-1), self.hash_coef, self.buckets)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        vecs = nn.functional.embedding(
            self.rows(ids), self.weight
        )  # (batch, n_fields, probes, width)
        return vecs.reshape(ids.shape[0], self.n_fields, self.dim)

    def describe(self) -> dict[str, object]:
        return {"buckets": self.buckets, "probes": self.probes}
