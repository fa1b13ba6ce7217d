"""AutoSrh (Kong et al.): L1-sparsified dimension saliency per (feature group, dim)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from embedlab._validation import check_bool, check_positive_float
from embedlab.fields import Field
from embedlab.tables._dimsearch import GroupedDimTable
from embedlab.tables._phases import PhaseContext
from embedlab.tables._registry import register_table

__all__ = ["AutoSrhTable"]


@register_table("autosrh")
class AutoSrhTable(GroupedDimTable):
    """AutoSrh: learned dimension saliency with an L1 penalty, globally pruned to the budget.

    Same structure as :class:`~embedlab.tables.dnis.DNISTable` (frequency groups per
    field, output ``e = v[id] * s[group(id)]`` with one saliency ``s[g, d]`` per
    (group, dim), initialised to 1, the same deployable storage and budget rule), but the
    saliency is searched and ranked differently:

    - while searching, :meth:`regularization` adds ``l1 * sum_{g,d} w_g |s[g, d]|``, so
      saliencies of dims the loss does not need are driven towards zero (the trainer adds
      it to the loss; the penalty belongs to the search phase, so it starts at
      ``start_phase("search")``). With ``size_weighted`` each saliency is charged the storage it
      controls, ``w_g = rows_g / mean_g rows_g``, so a group of many rare ids must earn
      its bytes (plain L1, ``w_g = 1``, otherwise); the saliency trains at
      ``gate_lr_mult`` times the learning rate;
    - after the search the pairs are ranked by saliency alone, ``|s[g, d]|`` (divided by
      the largest ``|s|`` of the same field when ``normalize``, so fields whose
      downstream weights work at different scales compete fairly), not by the output
      magnitude ``|alpha| * mean|v|`` that DNIS uses;
    - the lowest-saliency pairs are pruned globally until the deployable form fits the
      budget (kept by decreasing saliency while they fit), ``s`` is folded into the kept
      weights and frozen, and the model retrains with the structure fixed. The penalty is
      zero from then on.

    Budget: as DNIS: ``sum_g [k_g > 0] (4 rows_g k_g + k_g idx + rows_g id_bytes + 12)
    <= budget_bytes``; the smallest form is one dim of one id.

    Kong et al., "AutoSrh: An Embedding Dimensionality Search Framework for Tabular Data
    Prediction", IEEE TKDE 2023.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: output embedding dimension.
        compression: the deployable form uses at most ``full_bytes / compression`` bytes.
        seed: seeds the initialisation.
        n_groups: frequency groups per field (at most the field's cardinality).
        gate_lr_mult: the saliency's learning rate relative to the optimizer's.
        init_std: std of the normal initialisation of ``v``.
        l1: weight of the L1 penalty on the saliencies during the search (>= 0).
        size_weighted: weight each group's penalty by its share of the rows.
        normalize: rank saliencies relative to the largest one of their field.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32; saliency
        ``s = gate()`` ``(n_groups_total, dim)``.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = AutoSrhTable([Field("user", 957), Field("ctx", 7)], dim=16, compression=10)
        >>> table.gate().shape
        torch.Size([8, 16])
        >>> table(torch.tensor([[3, 6]])).shape
        torch.Size([1, 2, 16])
    """

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        n_groups: int = 4,
        gate_lr_mult: float = 10.0,
        init_std: float = 1e-2,
        l1: float = 1e-4,
        size_weighted: bool = True,
        normalize: bool = True,
    ) -> None:
        super().__init__(
            fields,
            dim,
            compression=compression,
            seed=seed,
            n_groups=n_groups,
            gate_lr_mult=gate_lr_mult,
            init_std=init_std,
        )
        self.l1 = check_positive_float("l1", l1, strict=False)
        self.size_weighted = check_bool("size_weighted", size_weighted)
        self.normalize = check_bool("normalize", normalize)
        self._penalize = False

    def _begin_search(self, ctx: PhaseContext | None) -> None:
        super()._begin_search(ctx)
        self._penalize = True

    def penalty_weights(self) -> torch.Tensor:
        """``(n_groups_total, 1)`` L1 weight of each group's saliencies: its rows over the
        mean rows of a group when ``size_weighted``, else 1."""
        if not self.size_weighted:
            return torch.ones_like(self.group_rows).unsqueeze(1)
        return (self.group_rows / self.group_rows.mean()).unsqueeze(1)

    def regularization(self) -> torch.Tensor:
        """``l1 * sum_{g,d} w_g |s[g, d]|`` during the search phase (from
        ``start_phase("search")`` to its end), zero otherwise."""
        if not self._penalize or self.is_searched or self.l1 == 0:
            return torch.zeros((), device=self._device())
        return self.l1 * (self.penalty_weights() * self.gate().abs()).sum()

    def _importance(self) -> np.ndarray:
        saliency = self.gate().detach().abs().cpu().numpy()
        if not self.normalize:
            return np.asarray(saliency)
        fields = self.group_field.cpu().numpy()
        peak = np.zeros(self.n_fields)
        np.maximum.at(peak, fields, saliency.max(axis=1))  # each field's largest saliency
        return np.asarray(saliency / np.where(peak > 0, peak, 1.0)[fields][:, None])

    def _describe_extra(self) -> Mapping[str, object]:
        return {"l1": self.l1, "size_weighted": self.size_weighted, "normalize": self.normalize}
