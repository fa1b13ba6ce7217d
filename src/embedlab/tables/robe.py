"""ROBE: Random Offset Block Embedding (Desai et al., MLSys 2022)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from embedlab._validation import BudgetError, check_divides, check_positive_float
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable
from embedlab.tables._budget import HASH_COEF_BYTES
from embedlab.tables._hashing import MERSENNE_PRIME, hash_coefficients, universal_hash
from embedlab.tables._registry import register_table

__all__ = ["ROBETable"]


@register_table("robe")
class ROBETable(EmbeddingTable):
    """One circular float32 array; every embedding is read as hashed blocks of it.

    The embedding of id ``x`` of field ``f`` is cut into ``dim / chunk`` chunks.
    Chunk ``j`` is the ``chunk`` consecutive values of the array starting at
    offset ``h_f(x, j) mod S`` (wrapping around the end of the array), times a
    sign ``g_f(x, j)`` in ``{-1, +1}``. Both hashes are per-field universal hashes
    of the key ``x * n_chunks + j``. Any non-negative id is accepted
    (``strict_ids = False``).

    Budget: the location and sign coefficients take ``32 * n_fields`` bytes
    (persistent buffers); the array gets every remaining float,
    ``S = (budget_bytes - coefficients) // 4``. :class:`BudgetError` when
    ``S < chunk``.

    Desai, Chou and Shrivastava, "Random Offset Block Embedding (ROBE) for
    compressed embedding tables in deep learning recommendation systems",
    MLSys 2022.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: embedding dimension.
        compression: use at most ``full_bytes / compression`` bytes.
        seed: seeds the hash functions and the initialisation.
        chunk: block size ``Z``; must divide ``dim`` (default ``dim``: one block).
        init_std: std of the normal initialisation of the array.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> fields = [Field("user", 957), Field("item", 4082)]
        >>> table = ROBETable(fields, dim=16, compression=100, chunk=4)
        >>> table(torch.tensor([[3, 10**9]])).shape
        torch.Size([1, 2, 16])
    """

    strict_ids = False
    loc_coef: torch.Tensor
    sign_coef: torch.Tensor
    steps: torch.Tensor
    chunk_ids: torch.Tensor

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        chunk: int | None = None,
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        self.chunk = check_divides("chunk", self.dim if chunk is None else chunk, "dim", self.dim)
        self.init_std = check_positive_float("init_std", init_std)
        self.n_chunks = self.dim // self.chunk
        coef_bytes = 2 * HASH_COEF_BYTES * self.n_fields
        self.size = (self.budget_bytes - coef_bytes) // FLOAT32_BYTES
        if self.size < self.chunk:
            raise BudgetError(
                f"robe cannot reach compression {self.compression:g} for these fields: "
                f"needs at least {coef_bytes + self.chunk * FLOAT32_BYTES} bytes, "
                f"budget is {self.budget_bytes}"
            )
        coef = hash_coefficients(2 * self.n_fields, self.seed)
        self.register_buffer("loc_coef", coef[: self.n_fields].clone())
        self.register_buffer("sign_coef", coef[self.n_fields :].clone())
        self.register_buffer("steps", torch.arange(self.chunk), persistent=False)
        self.register_buffer("chunk_ids", torch.arange(self.n_chunks), persistent=False)
        self.weight = nn.Parameter(torch.empty(self.size))
        gen = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            self.weight.normal_(0.0, self.init_std, generator=gen)

    def locate(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Block offsets and signs of validated ids, each ``(batch, n_fields, n_chunks)``."""
        # (batch, n_fields, n_chunks); ids folded first so the key stays in int64
        key = (ids % MERSENNE_PRIME).unsqueeze(-1) * self.n_chunks + self.chunk_ids
        coef_loc = self.loc_coef.unsqueeze(1)  # (n_fields, 1, 2) broadcasts over chunks
        coef_sign = self.sign_coef.unsqueeze(1)
        offsets = universal_hash(key, coef_loc, self.size)
        signs = universal_hash(key, coef_sign, 2).to(torch.float32) * 2.0 - 1.0
        return offsets, signs

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        offsets, signs = self.locate(ids)
        pos = (offsets.unsqueeze(-1) + self.steps) % self.size  # (batch, n_fields, n_chunks, chunk)
        blocks = self.weight[pos] * signs.unsqueeze(-1)
        return blocks.reshape(ids.shape[0], self.n_fields, self.dim)

    def describe(self) -> dict[str, object]:
        return {"size": self.size, "chunk": self.chunk}
