"""Multi-granular quantised embeddings (Kang et al., WWW 2020 companion)."""

from __future__ import annotations

from collections.abc import Sequence

from embedlab._validation import check_fraction
from embedlab.fields import Field
from embedlab.tables._codebook import ProductQuantizedTable
from embedlab.tables._registry import register_table

__all__ = ["MGQETable"]


@register_table("mgqe")
class MGQETable(ProductQuantizedTable):
    """Product-quantised embeddings where frequent ids get more centroids than rare ones.

    DPQ (see :class:`~embedlab.tables.dpq.DPQTable`: queries, ``D`` groups, key and
    value centroids, straight-through codes, the same ``"train"`` / ``"finetune"``
    phases) with two frequency tiers: the ``head_fraction`` most frequent ids of each
    field (counted with ``np.bincount`` over the training rows in ``start_phase`` of
    the first phase; without a phase call the lowest ids, i.e. uniform frequencies)
    form the head tier and may use all ``K_head`` centroids of each group; the other
    ids may use only the first ``K_tail < K_head``. A tail id's code therefore needs
    only ``log2(K_tail)`` bits.

    Budget: codes are stored per tier at their own width, plus one shared value
    codebook and a tier map: ``ceil(n_head * D * log2(K_head) / 8) +
    ceil(n_tail * D * log2(K_tail) / 8) + K_head * dim * 4 + ceil(n_ids / 8) +
    4 * ceil(n_ids / 512)`` bytes (the bitmap says an id's tier, the rank directory
    where its code sits in the tier's packed codes). ``D`` divides ``dim``,
    ``K_tail < K_head`` are powers of two in 2..256; the feasible plan with the most
    code bits over all ids wins, ties go to the smaller codebook.
    :class:`BudgetError` when even ``D = 1, K_head = 4, K_tail = 2`` does not fit.

    Kang et al., "Learning Multi-granular Quantized Embeddings for Large-Vocab
    Categorical Features in Recommender Systems", WWW 2020 companion.

    Args:
        head_fraction: share of each field's ids in the head tier, in (0, 1); a field
            keeps ``ceil(head_fraction * cardinality)`` head ids.
        fields, dim, compression, seed, variant, groups, temperature, beta, init_std,
            code_std: as :class:`~embedlab.tables.dpq.DPQTable`.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32; ``tier``
        ``(n_ids,)`` int8 (0 head, 1 tail); ``codes`` ``(n_ids, D)`` uint8 once frozen.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = MGQETable([Field("user", 957), Field("item", 4082)], dim=16, compression=10)
        >>> table.describe()["centroids"], table.describe()["tier_sizes"]
        ([32, 4], [1009, 4030])
        >>> table(torch.tensor([[3, 4000]])).shape
        torch.Size([1, 2, 16])
    """

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        head_fraction: float = 0.2,
        variant: str = "sx",
        groups: int | None = None,
        temperature: float = 1.0,
        beta: float = 0.25,
        init_std: float = 1e-2,
        code_std: float = 1e-2,
    ) -> None:
        head = check_fraction("head_fraction", head_fraction)
        super().__init__(
            fields,
            dim,
            compression=compression,
            seed=seed,
            tier_fractions=(head,),
            variant=variant,
            groups=groups,
            temperature=temperature,
            beta=beta,
            init_std=init_std,
            code_std=code_std,
        )

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "head_fraction": self.tier_fractions[0]}
