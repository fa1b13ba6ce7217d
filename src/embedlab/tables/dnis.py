"""DNIS (Cheng et al.): a soft selection layer per (feature group, dim), pruned to the budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from embedlab._validation import check_bool, check_choice, check_positive_float
from embedlab.fields import Field
from embedlab.tables._bilevel import ValidationSearch
from embedlab.tables._dimsearch import GroupedDimTable
from embedlab.tables._dnis_prune import PRUNE_RULES, floor_entries, select_with_floor
from embedlab.tables._phases import PhaseContext
from embedlab.tables._registry import register_table

__all__ = ["DNISTable"]

SEARCHES = ("bilevel", "joint")


@register_table("dnis")
class DNISTable(GroupedDimTable):
    """Differentiable Neural Input Search: mixed dims per frequency group of features.

    The ids of every field are split into ``n_groups`` groups of similar frequency (id
    counts of ``ctx.train`` at ``start_phase("search")``; equal runs of ids without data),
    the paper's feature blocks. A soft selection layer holds one weight ``alpha[g, d]``
    per (group, dim), initialised to 1, and the output is ``e = v[id] * alpha[group(id)]``.

    Phases:
        ``search`` with ``search="bilevel"`` (the paper's procedure): the bi-level problem
        ``min_alpha L_valid(v*(alpha), alpha)``, ``v* = argmin_v L_train(v, alpha)``,
        solved by the first-order alternation: the trainer's optimizer steps ``v`` and the
        model on a training batch, then ``alpha`` takes one step of its own Adam
        (``alpha_lr``) on a validation batch of the same size
        (:class:`~embedlab.tables._bilevel.ValidationSearch`); training batches never move
        ``alpha``. The paper normalises ``alpha``'s gradients per block so that blocks of
        rare features are not starved; Adam's per-entry scaling does that here. Without
        ``ctx.valid_loss`` (no validation data, or a trainer that does not offer it, such
        as the distributed one) the search falls back to ``"joint"``, which
        :meth:`describe` reports. ``search="joint"``: ``alpha`` trains with the model's
        optimizer on training batches, at ``gate_lr_mult`` times the learning rate.
        ``end_phase("search")``: prune to the budget. Each (group, dim) entry is scored
        by the rule ``prune``: ``"entry"`` (the paper's: an entry stays if its own weight
        ``|alpha[g, d]|`` is large, i.e. a threshold on ``|alpha|`` lowered until the
        budget is spent), ``"group"`` (``|alpha[g, d]| * mean_{id in g} |v[id, d]|``, the
        mean magnitude the entry adds to an output) or ``"auto"`` (cut with both, keep
        the one whose pruned model has the higher validation AUC, ``ctx.evaluate``;
        ``"entry"`` without validation data). With ``field_floor`` every field first
        reserves one dim (its best-scored) of its most frequent group, cheapest fields
        first while the budget allows (:func:`~embedlab.tables._dnis_prune.floor_entries`),
        so no field reads zeros for every id; then entries are kept by decreasing score
        while the deployable storage fits (an entry that does not fit is skipped, so
        cheaper ones further down can use the rest). ``alpha`` is folded into the kept
        weights, dropped entries become exact zeros and ``alpha`` is frozen.
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

    Reproduction (the paper: ~20x fewer embedding parameters at no AUC loss): does not
    reproduce here, narrowly at 10x. Frappe DeepFM dim 16, seeds 0-2, test AUC: full
    0.9293 +- 0.0001; 10x 0.9232 +- 0.0013 (dAUC -0.0061 +- 0.0012; -0.031 with the
    former joint search and group-only cut); 100x 0.8723 +- 0.0041 (dAUC -0.057; about
    -0.06 before). Because the budget counts every stored byte, the long tail of items
    gets no dim: at 10x the two tail groups of the item field (3,097 of 4,082 ids,
    about half of its lookups) keep nothing, since one dim over the 1,880-id group
    alone costs 7.5 KB of the 34 KB budget (0.76 dims per item id on average); at 100x
    the user and item fields keep 0.03-0.27 dims per id. ``"auto"`` chose ``"group"``
    in 5 of 6 runs (its cut lost less validation AUC than the paper's ``|alpha|`` rule).

    Cheng et al., "Differentiable Neural Input Search for Recommender Systems",
    arXiv:2006.04466 (2020).

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: output embedding dimension.
        compression: the deployable form uses at most ``full_bytes / compression`` bytes.
        seed: seeds the initialisation.
        n_groups: frequency groups per field (at most the field's cardinality).
        gate_lr_mult: ``alpha``'s learning rate relative to the optimizer's (``"joint"``);
            also the storage scale of ``alpha`` (``gate_raw = alpha / gate_lr_mult``).
        init_std: std of the normal initialisation of ``v``.
        search: ``"bilevel"`` (validation batches move ``alpha``) or ``"joint"``.
        alpha_lr: Adam learning rate of ``alpha`` in the bi-level search.
        prune: the pruning rule, ``"auto"``, ``"entry"`` or ``"group"``.
        field_floor: reserve one dim of every field's most frequent group.

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

    # restored on resume (training/_phase_resume.py); the bi-level search's own Adam state is
    # not: checkpoints come from the streamed/distributed trainer, whose search is joint
    resume_attrs = ("_search_used", "_prune_used", "_prune_auc", "_alpha_steps")

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
        search: str = "bilevel",
        alpha_lr: float = 1e-2,
        prune: str = "auto",
        field_floor: bool = True,
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
        self.search = check_choice("search", search, SEARCHES)
        self.alpha_lr = check_positive_float("alpha_lr", alpha_lr)
        self.prune = check_choice("prune", prune, PRUNE_RULES)
        self.field_floor = check_bool("field_floor", field_floor)
        self._searcher: ValidationSearch | None = None
        self._alpha_steps = 0
        self._search_used: str | None = None
        self._prune_used: str | None = None
        self._prune_auc: dict[str, float] = {}

    # --- search ------------------------------------------------------------
    def _begin_search(self, ctx: PhaseContext | None) -> None:
        super()._begin_search(ctx)
        self._searcher, self._search_used, self._alpha_steps = None, "joint", 0
        self.gate_raw.requires_grad_(True)
        if self.search == "bilevel" and ctx is not None and ctx.valid_loss is not None:
            lr = self.alpha_lr / self.gate_lr_mult  # alpha = gate_lr_mult * gate_raw
            self._searcher = ValidationSearch([self.gate_raw], ctx, lr)
            self._search_used = "bilevel"

    def on_step(self, step: int) -> None:
        """After the trainer's step on a training batch: one step of ``alpha`` on a
        validation batch (bi-level search only)."""
        if self._searcher is not None and not self._is_searched:
            self._searcher.step()
            self._alpha_steps += 1

    def group_mean_abs(self) -> np.ndarray:
        """``(n_groups_total, dim)`` mean ``|v|`` over the ids of each group."""
        sums = torch.zeros(self.n_groups_total, self.dim, device=self.weight.device)
        sums.index_add_(0, self.group_of, self.weight.detach().abs())
        return np.asarray((sums / self.group_rows.clamp_min(1).unsqueeze(1)).cpu().numpy())

    def scores(self) -> dict[str, np.ndarray]:
        """``(n_groups_total, dim)`` score of every entry under each pruning rule."""
        alpha = np.abs(self.gate().detach().cpu().numpy())
        return {"entry": alpha, "group": alpha * self.group_mean_abs()}

    def _importance(self) -> np.ndarray:
        return self.scores()["group"]

    def candidates(self) -> dict[str, np.ndarray]:
        """The kept entries ``(n_groups_total, dim)`` bool under each rule ``prune`` tries."""
        layout, scores = self.layout(), self.scores()
        heads = [int(g) for g in self._group_start]
        rules = ("entry", "group") if self.prune == "auto" else (self.prune,)
        out = {}
        for rule in rules:
            floor = (
                floor_entries(layout, scores[rule], heads, self.budget_bytes)
                if self.field_floor
                else []
            )
            out[rule] = select_with_floor(layout, scores[rule], self.budget_bytes, floor)
        return out

    def _valid_auc(self, keep: np.ndarray, ctx: PhaseContext | None) -> float | None:
        """Validation AUC of the model with only ``keep`` left (None without data)."""
        if ctx is None or ctx.valid is None:
            return None
        saved = self.gate_raw.detach().clone()
        try:
            self.gate_raw.mul_(torch.from_numpy(keep).to(saved))
            return float(ctx.evaluate())
        except ValueError:  # the trainer has no validation data
            return None
        finally:
            self.gate_raw.copy_(saved)

    def _finish_search(self, ctx: PhaseContext | None) -> None:
        self._searcher = None
        cands = self.candidates()
        self._prune_auc = {}
        if len(cands) > 1:
            for rule, keep in cands.items():
                auc = self._valid_auc(keep, ctx)
                if auc is not None:
                    self._prune_auc[rule] = auc
        if len(self._prune_auc) == len(cands) > 1:
            rule = max(cands, key=lambda r: (self._prune_auc[r], r == "entry"))
        else:
            rule = "entry" if "entry" in cands else next(iter(cands))
        self._prune_used = rule
        self._fold(cands[rule])

    def _describe_extra(self) -> Mapping[str, object]:
        return {
            "search": self.search,
            "search_used": self._search_used,
            "alpha_steps": self._alpha_steps,
            "prune": self.prune,
            "prune_used": self._prune_used,
            "prune_valid_auc": {k: round(v, 5) for k, v in self._prune_auc.items()},
            "field_floor": self.field_floor,
        }
