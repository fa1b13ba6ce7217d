"""PEP (Liu et al., ICLR 2021): learnable soft thresholds prune the embedding table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import nn

from embedlab._validation import check_choice, check_float_in_range
from embedlab.fields import Field
from embedlab.tables._phases import PhaseContext
from embedlab.tables._registry import register_table
from embedlab.tables._sparse import MaskedTable, magnitude_mask, normal_table

__all__ = ["Granularity", "PEPTable", "Retrain"]

#: which entries of a PEP table share a threshold (see :class:`PEPTable`)
Granularity = Literal["global", "dim", "field", "field_dim", "feature", "feature_dim"]
#: how PEP retrains the kept entries: reset to their initial values (``"rewind"``) or
#: from their pruned values (``"finetune"``)
Retrain = Literal["rewind", "finetune"]


@register_table("pep")
class PEPTable(MaskedTable):
    """Plug-in Embedding Pruning: a learnable soft threshold zeroes small entries.

    Phase ``"prune"`` reads ``e = sign(v) * relu(|v| - sigmoid(s))``: ``v`` the stored
    weight, ``s`` a learnable threshold shared at ``granularity`` (``"global"``: one;
    ``"dim"``: one per dimension; ``"field"`` / ``"field_dim"``: one per field / per
    field and dimension; ``"feature"`` / ``"feature_dim"``: one per id / per id and
    dimension). Training moves ``s`` with the loss gradient, up where shrinking helps,
    and the sparsity grows with it. ``end_phase("prune")`` keeps the non-zeros of ``e``
    (the sparsity PEP learned) and, if they exceed the budget, only the
    ``max_nnz`` largest of them (the sparsity enforced); both are in :meth:`describe`.
    The kept entries become a persistent mask, the threshold is switched off and
    frozen, and phase ``"retrain"`` trains the masked table. ``retrain="rewind"``
    resets the kept entries to their initial values (the paper's lottery-ticket
    retraining, initial values regenerated from ``seed``); ``"finetune"`` keeps the
    pruned values ``e`` and fine-tunes them.

    ``threshold_init`` sets ``s`` at the start. The paper's code starts at -15 (and
    lower) with Xavier-initialised tables and trains for hundreds of thousands of steps;
    a benchmark phase here has a few hundred, in which Adam moves ``s`` by at most about
    ``lr`` per step. Measured on Frappe (DeepFM, 5 epochs, ``init_std = 1e-2``): the loss
    gradient lowers the thresholds slightly rather than raising them, so PEP's own
    sparsity is what the initial gate cuts and keeps dead (entries below the gate get no
    gradient): 38% at the default -6 (``sigmoid = 2.5e-3``), 4% at -8, while
    -4 (``sigmoid = 0.018``) would cut 93% of the entries at random before training. The
    budget cut at ``end_phase`` then does the rest (10x: learned 38%, enforced 93%).
    -6 gave the better test AUC after retraining (0.871 against 0.867 for -8).
    Rewinding and fine-tuning retrained equally well there (0.871 both); ``"rewind"``,
    the paper's choice, is the default.

    Budget: as :class:`~embedlab.tables._sparse.MaskedTable`: the deployable form is
    the cheapest sparse layout of the kept non-zeros, at most
    ``max_nonzeros(budget_bytes, n_rows, dim)`` of them; a budget too small for ``dim``
    non-zeros per field raises :class:`~embedlab.BudgetError`. Until the prune phase
    ends :meth:`memory_bytes` reports the non-zeros of ``e`` (most entries at first).

    Liu et al., "Learnable Embedding Sizes for Recommender Systems", ICLR 2021.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: embedding dimension.
        compression: use at most ``full_bytes / compression`` bytes.
        seed: seeds the initialisation (and the rewound values).
        granularity: which entries share a threshold (see above).
        threshold_init: initial value of every threshold ``s``.
        retrain: ``"rewind"`` or ``"finetune"`` (see above).
        init_std: std of the normal initialisation.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32; ``weight``
        ``(sum(cardinalities), dim)``; ``threshold`` ``(groups, 1 or dim)``.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = PEPTable([Field("user", 957), Field("ctx", 7)], dim=16, compression=10)
        >>> tuple(table.threshold.shape)
        (2, 16)
        >>> with torch.no_grad():
        ...     _ = table.threshold.fill_(5.0)  # threshold ~1 zeroes every entry
        >>> table.nonzeros()
        0
    """

    phases = ("prune", "retrain")
    row_group: torch.Tensor
    searching: torch.Tensor

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        granularity: Granularity = "field_dim",
        threshold_init: float = -6.0,
        retrain: Retrain = "rewind",
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed, init_std=init_std)
        self.granularity = check_choice("granularity", granularity, get_args(Granularity))
        self.threshold_init = check_float_in_range("threshold_init", threshold_init, -30.0, 30.0)
        self.retrain = check_choice("retrain", retrain, get_args(Retrain))
        n_rows = self.weight.shape[0]
        field_of_row = torch.repeat_interleave(
            torch.arange(self.n_fields), torch.tensor(self.cardinalities)
        )
        if self.granularity in ("global", "dim"):
            group, n_groups = torch.zeros(n_rows, dtype=torch.int64), 1
        elif self.granularity in ("field", "field_dim"):
            group, n_groups = field_of_row, self.n_fields
        else:
            group, n_groups = torch.arange(n_rows), n_rows
        width = self.dim if self.granularity.endswith("dim") else 1
        self.register_buffer("row_group", group, persistent=False)
        # 1 while the soft threshold is on; 0 once the mask is fixed (saved with the state)
        self.register_buffer("searching", torch.ones(()))
        self.threshold = nn.Parameter(torch.full((n_groups, width), self.threshold_init))
        self._found: dict[str, object] = {}

    def _soft_threshold(self, v: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``sign(v) * relu(|v| - sigmoid(s))`` for ``v`` looked up at ``rows`` (any shape)."""
        gate = torch.sigmoid(self.threshold[self.row_group[rows]]) * self.searching
        return torch.sign(v) * torch.relu(v.abs() - gate)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        rows = ids + self.offsets  # (batch, n_fields)
        v = nn.functional.embedding(rows, self.weight)  # (batch, n_fields, dim)
        return self._masked(self._soft_threshold(v, rows), rows)

    def effective_weight(self) -> torch.Tensor:
        rows = torch.arange(self.weight.shape[0], device=self.weight.device)
        return self._soft_threshold(self.weight, rows) * self.mask

    @torch.no_grad()
    def end_phase(self, phase: str, ctx: PhaseContext) -> None:
        if phase != "prune":
            return
        pruned = self.effective_weight()
        learned = int(torch.count_nonzero(pruned))
        keep = magnitude_mask(pruned, min(learned, self.max_nnz))
        gate = torch.sigmoid(self.threshold)
        self._found = {
            "learned_sparsity": 1.0 - learned / self.n_entries,
            "enforced_sparsity": 1.0 - int(keep.sum()) / self.n_entries,
            "threshold_mean": float(gate.mean()),
            "threshold_max": float(gate.max()),
        }
        start = pruned
        if self.retrain == "rewind":
            start = normal_table(self.weight.shape[0], self.dim, self.init_std, self.seed)
        self.weight.copy_(start.to(self.weight.device) * keep)
        self.mask.copy_(keep)
        self.searching.zero_()
        self.threshold.requires_grad_(False)

    def _pending_phase(self) -> str | None:
        return "prune" if bool(self.searching) else None

    def describe(self) -> dict[str, object]:
        return {
            "granularity": self.granularity,
            "threshold_init": self.threshold_init,
            "retrain": self.retrain,
            **self._found,
            **self.sparsity_report(),
        }
