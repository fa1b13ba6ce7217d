"""DNIS (Cheng et al.): a soft selection layer per (feature group, dim), pruned to the budget."""

from __future__ import annotations

import numpy as np
import torch

from embedlab.tables._dimsearch import GroupedDimTable
from embedlab.tables._registry import register_table

__all__ = ["DNISTable"]


@register_table("dnis")
class DNISTable(GroupedDimTable):
    """Differentiable Neural Input Search: mixed dims per frequency group of features.

    The ids of every field are split into ``n_groups`` groups of similar frequency (id
    counts of ``ctx.train`` at ``start_phase("search")``; equal runs of ids without data).
    A soft selection layer holds one weight ``alpha[g, d]`` per (group, dim), initialised
    to 1, and the output is ``e = v[id] * alpha[group(id)]``.

    Phases:
        ``search``: ``v`` and ``alpha`` train jointly with the model's optimizer (the
        paper updates ``alpha`` by gradient on validation batches; one optimizer keeps the
        trainer unchanged), ``alpha`` at ``gate_lr_mult`` times the learning rate.
        ``end_phase("search")``: every (group, dim) pair is scored by
        ``|alpha[g, d]| * mean_{id in g} |v[id, d]|``, the mean magnitude the pair adds
        to an output, and pairs are kept by decreasing score while the deployable
        storage fits the budget (a pair that does not fit is skipped, so cheaper ones
        further down can still use the rest); ``alpha`` is folded into the kept weights,
        dropped pairs become exact zeros and ``alpha`` is frozen. (Scoring per byte,
        i.e. times the group's lookups per stored row, gave every byte to the small
        context fields on Frappe, whose ids are frequent but carry no signal: test AUC
        0.50 at 100x against 0.86 for this score.)
        ``retrain``: the kept structure trains with a 0/1 mask (a persistent buffer).

    Budget: the deployable form stores, for every group that keeps ``k_g > 0`` dims,
    its weights ``rows_g x k_g`` float32, the ``k_g`` kept dim indices (uint8 for
    ``dim <= 256``), the sorted ids of its rows in the smallest unsigned dtype for the
    field's cardinality (none when the group is the whole field) and a 12-byte header:
    ``sum_g [k_g > 0] (4 rows_g k_g + k_g idx + rows_g id_bytes + 12) <= budget_bytes``.
    Groups that keep nothing are not stored (their ids read as zeros). The smallest form
    is one dim of one id, so any budget of a few dozen bytes is reachable; below it,
    :class:`~embedlab.BudgetError`. While searching the table holds the full
    ``sum(cardinalities) x dim`` weights plus ``alpha`` (over budget, as allowed).

    Cheng et al., "Differentiable Neural Input Search for Recommender Systems",
    arXiv:2006.04466 (2020).

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: output embedding dimension.
        compression: the deployable form uses at most ``full_bytes / compression`` bytes.
        seed: seeds the initialisation.
        n_groups: frequency groups per field (at most the field's cardinality).
        gate_lr_mult: ``alpha``'s learning rate relative to the optimizer's.
        init_std: std of the normal initialisation of ``v``.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32; ``v``
        ``(sum(cardinalities), dim)``, ``alpha = gate()`` ``(n_groups_total, dim)``.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = DNISTable([Field("user", 957), Field("ctx", 7)], dim=16, compression=10)
        >>> table.gate().shape, table.phases
        (torch.Size([8, 16]), ('search', 'retrain'))
        >>> table(torch.tensor([[3, 6]])).shape
        torch.Size([1, 2, 16])
    """

    def group_mean_abs(self) -> np.ndarray:
        """``(n_groups_total, dim)`` mean ``|v|`` over the ids of each group."""
        sums = torch.zeros(self.n_groups_total, self.dim, device=self.weight.device)
        sums.index_add_(0, self.group_of, self.weight.detach().abs())
        return np.asarray((sums / self.group_rows.clamp_min(1).unsqueeze(1)).cpu().numpy())

    def _importance(self) -> np.ndarray:
        alpha = self.gate().detach().abs().cpu().numpy()
        return np.asarray(alpha * self.group_mean_abs())  # mean |e[:, d]| over the group
