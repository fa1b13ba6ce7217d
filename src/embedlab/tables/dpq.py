"""Differentiable product quantisation (Chen, Li & Sun, ICML 2020)."""

from __future__ import annotations

from collections.abc import Sequence

from embedlab.fields import Field
from embedlab.tables._codebook import ProductQuantizedTable
from embedlab.tables._registry import register_table

__all__ = ["DPQTable"]


@register_table("dpq")
class DPQTable(ProductQuantizedTable):
    """Every id stored as ``D`` codes into one learned product-quantisation codebook.

    While training (phase ``"train"``) every id of every field has a continuous query
    embedding ``q`` (a full float table: over the budget while it trains, which the
    protocol allows). It is cut into ``D`` groups of ``dim / D``; each group has
    ``K`` key and ``K`` value centroids shared by all ids and fields. The code of
    group ``g`` is the nearest key, ``c_g = argmin_k ||q_g - key_gk||``, and the output
    is the concatenation of the value centroids ``value_{g, c_g}``. (The paper scores
    keys by the dot product ``<q_g, key_gk>``; then only keys on the convex hull of a
    group's keys can ever win, 2 of ``K`` when ``dim / D = 1``: on Frappe at 10x
    (``D = 16, K = 8``) the dot product used 2 of the 8 codes of every group, wasting
    2 of the 3 bits paid for, where the distance uses all 8.)

    Variants: ``"sx"`` (default, the paper's softmax variant): the forward pass is the
    one-hot choice, the backward pass the gradient of the softmax over
    ``-||q_g - key_gk||^2 / temperature`` (straight-through), so queries, keys and
    values learn from the task loss. ``"vq"``: the code is the
    nearest value centroid (L2), the task gradient goes straight through to the
    query, and :meth:`regularization` adds the codebook + ``beta`` x commitment loss.

    ``end_phase("train")`` freezes every id's codes (computed once, a persistent
    uint8 buffer) and drops the queries and keys; phase ``"finetune"`` trains only
    the value centroids with the codes fixed.

    Budget: the deployable form is the bit-packed codes plus the value codebook,
    ``ceil(n_ids * D * log2(K) / 8) + K * dim * 4`` bytes (:meth:`memory_bytes` at
    any stage; :meth:`export_packed` produces exactly those bytes). ``D`` divides
    ``dim``, ``K`` is a power of two in 2..256; the feasible ``(D, K)`` with the most
    code bits per id wins, ties go to the smaller codebook. :class:`BudgetError`
    when even ``D = 1, K = 2`` (1 bit per id) does not fit: DPQ reaches about
    ``32 * dim`` x on large vocabularies.

    Chen, Li & Sun, "Differentiable Product Quantization for End-to-End Embedding
    Compression", ICML 2020.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: embedding dimension.
        compression: use at most ``full_bytes / compression`` bytes (deployed).
        seed: seeds the initialisation.
        variant: ``"sx"`` (softmax, straight-through) or ``"vq"`` (nearest centroid).
        groups: fix ``D`` (must divide ``dim``); None lets the budget choose it.
        temperature: softmax temperature of ``sx``.
        beta: commitment-loss weight of ``vq``.
        init_std: std of the normal initialisation of the value centroids (and of the
            queries of ``vq``).
        code_std: scale of the ``sx`` queries and keys at initialisation (query entries
            ``N(0, code_std^2 / (dim / D))``, key entries ``N(0, code_std^2)``); squared
            distances are divided by ``temperature * code_std^2``, so the logits start
            at unit scale. Small values let Adam move queries across centroid cells:
            Frappe, 10x, valid AUC after 4 epochs 0.775 at 1.0, 0.920 at 0.1, 0.927 at
            0.01, 0.931 at 0.003.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32; ``query``
        ``(n_ids, dim)`` while training; ``codes`` ``(n_ids, D)`` uint8 once frozen;
        key / value centroids ``(D, K, dim / D)``.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = DPQTable([Field("user", 957), Field("item", 4082)], dim=16, compression=10)
        >>> table.describe()["groups"], table.describe()["centroids"]
        (16, [8])
        >>> table.freeze()  # what end_phase("train") does
        >>> table(torch.tensor([[3, 4000]])).shape, table.memory_bytes() <= table.budget_bytes
        (torch.Size([1, 2, 16]), True)
    """

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        variant: str = "sx",
        groups: int | None = None,
        temperature: float = 1.0,
        beta: float = 0.25,
        init_std: float = 1e-2,
        code_std: float = 1e-2,
    ) -> None:
        super().__init__(
            fields,
            dim,
            compression=compression,
            seed=seed,
            tier_fractions=(),
            variant=variant,
            groups=groups,
            temperature=temperature,
            beta=beta,
            init_std=init_std,
            code_std=code_std,
        )
