"""Deep Hash Embedding (Kang et al., KDD 2021): hash codes decoded by an MLP, no table."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from embedlab._validation import BudgetError, check_int
from embedlab.fields import Field
from embedlab.tables._base import FLOAT32_BYTES, EmbeddingTable
from embedlab.tables._budget import HASH_COEF_BYTES
from embedlab.tables._hashing import MERSENNE_PRIME, hash_coefficients, universal_hash
from embedlab.tables._registry import register_table

__all__ = ["DHETable"]

#: hash range of the encoder (the paper's m = 1e6)
HASH_RANGE = 10**6


def _mlp_floats(n_hashes: int, hidden: int, dim: int) -> int:
    """Weights and biases of ``n_hashes -> hidden -> hidden -> dim``."""
    return n_hashes * hidden + hidden + hidden * hidden + hidden + hidden * dim + dim


def _largest_hidden(n_hashes: int, dim: int, floats: int, cap: int) -> int:
    """Largest ``hidden <= cap`` whose MLP has at most ``floats`` parameters (0 if none)."""
    b = n_hashes + 2 + dim
    disc = b * b - 4 * (dim - floats)
    h = min(cap, max(0, int((-b + math.sqrt(max(disc, 0))) / 2)) + 1)
    while h > 0 and _mlp_floats(n_hashes, h, dim) > floats:
        h -= 1
    return h


@register_table("dhe")
class DHETable(EmbeddingTable):
    """Deep Hash Embedding: ``k`` hash codes per id, decoded to ``dim`` by an MLP.

    Encoding: the id is first keyed by its field with a per-field universal hash
    (a bijection of ``[0, p)``, so ids of one field never share a key), then
    ``k`` shared universal hashes map the key to ``[0, m)`` with ``m = 10**6``,
    and each code is scaled to a uniform value in ``[-1, 1]`` (the paper's uniform
    transform). Decoder: ``k -> hidden -> hidden -> dim`` with Mish activations,
    shared by all fields. No parameters depend on the cardinality, so any
    non-negative id is accepted (``strict_ids = False``).

    Budget: the MLP's float32 parameters plus the hash coefficients
    (``16 * (n_fields + k)`` bytes, persistent buffers). ``hidden`` is the largest
    width up to ``max_hidden`` that fits with ``k = n_hashes``; while that width is
    below ``min(dim, max_hidden)``, ``k`` is halved to free memory for the decoder.
    :class:`BudgetError` when even ``k = 1, hidden = 1`` does not fit. The paper's
    batch normalisation is left out (its running statistics would make the output
    depend on the train/eval mode).

    Kang et al., "Learning to Embed Categorical Features without Embedding Tables
    for Recommendation", KDD 2021.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: embedding dimension.
        compression: use at most ``full_bytes / compression`` bytes.
        seed: seeds the hash functions and the initialisation.
        n_hashes: the largest number of hash functions ``k`` (the paper uses 1024).
        max_hidden: the widest hidden layer considered.

    Shapes:
        ids ``(batch, n_fields)`` -> encoding ``(batch, n_fields, k)`` ->
        ``(batch, n_fields, dim)`` float32.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = DHETable([Field("user", 957), Field("item", 4082)], dim=16, compression=10)
        >>> table(torch.tensor([[3, 10**9]])).shape
        torch.Size([1, 2, 16])
    """

    strict_ids = False
    field_coef: torch.Tensor
    hash_coef: torch.Tensor

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        n_hashes: int = 64,
        max_hidden: int = 512,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed)
        self.max_n_hashes = check_int("n_hashes", n_hashes, min_value=1)
        self.max_hidden = check_int("max_hidden", max_hidden, min_value=1)
        k = self.max_n_hashes
        while True:
            floats = (self.budget_bytes - HASH_COEF_BYTES * (self.n_fields + k)) // FLOAT32_BYTES
            hidden = _largest_hidden(k, self.dim, floats, self.max_hidden)
            if hidden >= min(self.dim, self.max_hidden) or k == 1:
                break
            k = (k + 1) // 2
        if hidden < 1:
            need = HASH_COEF_BYTES * (self.n_fields + 1) + FLOAT32_BYTES * _mlp_floats(
                1, 1, self.dim
            )
            raise BudgetError(
                f"dhe cannot reach compression {self.compression:g} for these fields: "
                f"needs at least {need} bytes, budget is {self.budget_bytes}"
            )
        self.n_hashes = k
        self.hidden = hidden

        coef = hash_coefficients(self.n_fields + k, self.seed)
        self.register_buffer("field_coef", coef[: self.n_fields].clone())
        self.register_buffer("hash_coef", coef[self.n_fields :].clone())
        self.decoder = nn.Sequential(
            nn.Linear(k, hidden),
            nn.Mish(),
            nn.Linear(hidden, hidden),
            nn.Mish(),
            nn.Linear(hidden, self.dim),
        )
        gen = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            for layer in self.decoder:
                if isinstance(layer, nn.Linear):  # PyTorch's default init, but seeded
                    bound = 1.0 / math.sqrt(layer.in_features)
                    layer.weight.uniform_(-bound, bound, generator=gen)
                    layer.bias.uniform_(-bound, bound, generator=gen)

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """Dense hash encoding of validated ids: ``(batch, n_fields)`` -> ``(batch, n_fields, k)``
        with values uniform in ``[-1, 1]``."""
        key = universal_hash(ids, self.field_coef, MERSENNE_PRIME)  # (batch, n_fields)
        codes = universal_hash(key.unsqueeze(-1), self.hash_coef, HASH_RANGE)
        return codes.to(torch.float32) * (2.0 / (HASH_RANGE - 1)) - 1.0

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.decoder(self.encode(ids))
        return out

    def describe(self) -> dict[str, object]:
        return {"n_hashes": self.n_hashes, "hidden": self.hidden}
