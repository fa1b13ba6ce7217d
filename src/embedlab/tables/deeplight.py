"""DeepLight (Deng et al., WSDM 2021): scheduled magnitude pruning of the embedding table."""

from __future__ import annotations

import math
from collections.abc import Sequence

from embedlab._validation import check_fraction, check_int
from embedlab.fields import Field
from embedlab.tables._phases import PhaseContext
from embedlab.tables._registry import register_table
from embedlab.tables._sparse import MaskedTable

__all__ = ["DeepLightTable", "cubic_sparsity"]


def cubic_sparsity(t: int, horizon: int, target: float) -> float:
    """Sparsity at step ``t`` of the schedule ``target * (1 - (1 - t / horizon) ** 3)``.

    Rises from 0 at ``t = 0`` to ``target`` at ``t >= horizon`` (Zhu & Gupta's gradual
    pruning schedule, used by DeepLight).

    Example:
        >>> cubic_sparsity(0, 100, 0.9), cubic_sparsity(50, 100, 0.9), cubic_sparsity(100, 100, 0.9)
        (0.0, 0.7875, 0.9)
    """
    frac = min(max(t, 0), horizon) / horizon
    return target * (1.0 - (1.0 - frac) ** 3)


@register_table("deeplight")
class DeepLightTable(MaskedTable):
    """Embedding table pruned to the budget by magnitude on a cubic schedule.

    Phase ``"prune"``: every ``prune_every`` optimizer steps the smallest-magnitude
    entries are zeroed until the sparsity reaches ``s(t) = s_target * (1 - (1 - t/T)^3)``
    (:func:`cubic_sparsity`), with ``T = prune_fraction * steps_per_epoch * max_epochs``
    steps of the phase. A persistent bool mask holds pruned entries at zero: the
    forward multiplies by it and :meth:`on_step` re-zeroes them after each optimizer
    step. Early stopping may end the phase before ``T``, so ``end_phase("prune")``
    prunes to ``s_target`` exactly. Phase ``"retrain"`` fine-tunes the kept entries
    with the mask fixed.

    ``prune_fraction`` defaults to 0.3: the valid AUC falls while the sparsity rises, so
    with a later ``T`` early stopping tends to end the phase (and restore an epoch) well
    before the target, leaving a one-shot cut to ``end_phase``. On Frappe (DeepFM, 10x,
    5 epochs per phase) 0.6 stopped at sparsity 0.89 of 0.93 and reached test AUC 0.898;
    0.3 reached the target inside the phase and 0.901.

    Budget: the deployable form stores the non-zeros in the cheapest sparse layout
    (:func:`~embedlab.tables._sparse.sparse_formats`), so
    ``s_target = 1 - max_nonzeros(budget_bytes, n_rows, dim) / (n_rows * dim)``. A budget
    too small for ``dim`` non-zeros per field raises :class:`~embedlab.BudgetError`.
    Before the prune phase ends :meth:`memory_bytes` reports the current non-zeros
    (the full table at first).

    Deng et al., "DeepLight: Deep Lightweight Feature Interactions for Accelerating CTR
    Predictions in Ad Serving", WSDM 2021 (which also prunes the DNN; only the
    embedding table is pruned here).

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: embedding dimension.
        compression: use at most ``full_bytes / compression`` bytes.
        seed: seeds the initialisation.
        prune_every: steps between pruning events.
        prune_fraction: ``T`` as a fraction of the phase's maximum number of steps.
        init_std: std of the normal initialisation.

    Shapes:
        ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)`` float32; ``weight`` and
        ``mask`` ``(sum(cardinalities), dim)``.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field
        >>> table = DeepLightTable([Field("user", 957), Field("ctx", 7)], dim=16, compression=10)
        >>> round(table.target_sparsity, 3)
        0.933
        >>> table.prune_to(table.max_nnz)
        >>> table.memory_bytes() <= table.budget_bytes
        True
    """

    phases = ("prune", "retrain")
    # the schedule's position and what end_phase reports
    resume_attrs = ("horizon", "_t", "_reached")

    def __init__(
        self,
        fields: Sequence[Field],
        dim: int,
        *,
        compression: float = 1.0,
        seed: int = 0,
        prune_every: int = 10,
        prune_fraction: float = 0.3,
        init_std: float = 1e-2,
    ) -> None:
        super().__init__(fields, dim, compression=compression, seed=seed, init_std=init_std)
        self.prune_every = check_int("prune_every", prune_every, min_value=1)
        self.prune_fraction = check_fraction("prune_fraction", prune_fraction)
        self.target_sparsity = 1.0 - self.max_nnz / self.n_entries
        #: schedule length T in steps; None outside the prune phase
        self.horizon: int | None = None
        self._t = 0
        self._reached: dict[str, object] = {}

    def sparsity_at(self, t: int) -> float:
        """The scheduled sparsity after ``t`` steps of the prune phase."""
        if self.horizon is None:
            raise ValueError("sparsity_at needs the prune phase to have started (horizon unset)")
        return cubic_sparsity(t, self.horizon, self.target_sparsity)

    def start_phase(self, phase: str, ctx: PhaseContext) -> None:
        if phase == "prune":
            steps = ctx.steps_per_epoch * ctx.max_epochs
            self.horizon = max(1, math.ceil(self.prune_fraction * steps))
            self._t = 0

    def on_step(self, step: int) -> None:
        super().on_step(step)
        if self.horizon is None:
            return
        self._t += 1
        if self._t % self.prune_every == 0 or self._t == self.horizon:
            keep = self.n_entries - math.floor(self.sparsity_at(self._t) * self.n_entries)
            if keep < self.nonzeros():
                self.prune_to(keep)

    def end_phase(self, phase: str, ctx: PhaseContext) -> None:
        if phase != "prune":
            return
        self._reached = {
            "scheduled_steps": self._t,
            "sparsity_before_enforce": 1.0 - self.nonzeros() / self.n_entries,
        }
        self.prune_to(self.max_nnz)
        self.horizon = None

    def _pending_phase(self) -> str | None:
        """The mask holds at most ``max_nnz`` entries once ``end_phase("prune")`` enforced it."""
        return "prune" if int(self.mask.sum()) > self.max_nnz else None

    def describe(self) -> dict[str, object]:
        return {
            "prune_every": self.prune_every,
            "prune_fraction": self.prune_fraction,
            "target_sparsity": self.target_sparsity,
            **self._reached,
            **self.sparsity_report(),
        }
