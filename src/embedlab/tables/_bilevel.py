"""First-order bi-level search: architecture weights stepped on validation batches.

DARTS-style alternation (Liu et al., ICLR 2019, first-order variant), as DNIS uses it:
the trainer's optimizer steps the model weights ``w`` on a training batch, then
:meth:`ValidationSearch.step` steps the architecture weights ``a`` on a validation batch
with their own optimizer, ``a <- a - lr * Adam(d L_valid(w, a) / d a)``. The architecture
weights are kept out of the trainer's optimizer (``requires_grad`` is off except inside
:meth:`ValidationSearch.step`), so training batches never move them and validation
batches never move ``w``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from embedlab._validation import check_positive_float
from embedlab.tables._phases import PhaseContext

__all__ = ["ValidationSearch"]


class ValidationSearch:
    """Steps ``params`` on validation batches of ``ctx`` (``ctx.valid_loss``) with Adam.

    Validation rows are drawn without replacement in a seeded random order (reshuffled
    after each pass), in batches of the training batch size
    (``ceil(len(ctx.train) / ctx.steps_per_epoch)``, at most the validation size).

    Args:
        params: the architecture weights (their ``requires_grad`` is switched off).
        ctx: the phase context; must offer ``valid_loss`` and ``valid``.
        lr: Adam learning rate of ``params``.

    Raises:
        ValueError: when ``ctx`` offers no validation loss.
    """

    def __init__(self, params: Sequence[nn.Parameter], ctx: PhaseContext, lr: float) -> None:
        if ctx.valid_loss is None or ctx.valid is None or len(ctx.valid) == 0:
            raise ValueError(
                "ctx.valid_loss must be given for a bi-level search (validation data and "
                "a trainer that offers it), got None"
            )
        self.params = list(params)
        for p in self.params:
            p.requires_grad_(False)
        self.loss = ctx.valid_loss
        self.n_valid = len(ctx.valid)
        per_step = math.ceil(len(ctx.train) / max(ctx.steps_per_epoch, 1))
        self.batch_size = max(1, min(per_step, self.n_valid))
        self.optimizer = torch.optim.Adam(self.params, lr=check_positive_float("lr", lr))
        self._gen = torch.Generator().manual_seed(ctx.seed + 7919)
        self._order = torch.zeros(0, dtype=torch.int64)
        self._at = 0
        self.steps = 0
        self.last_loss = math.nan

    def next_rows(self) -> torch.Tensor:
        """``(batch,)`` int64 validation rows of the next batch."""
        if self._at >= self._order.numel():
            self._order, self._at = torch.randperm(self.n_valid, generator=self._gen), 0
        rows = self._order[self._at : self._at + self.batch_size]
        self._at += self.batch_size
        return rows

    def step(self) -> float:
        """One Adam step of the architecture weights on the next validation batch; returns
        the batch's loss."""
        for p in self.params:
            p.requires_grad_(True)
        try:
            loss = self.loss(self.next_rows())
            grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        finally:
            for p in self.params:
                p.requires_grad_(False)
        for p, g in zip(self.params, grads, strict=True):
            p.grad = torch.zeros_like(p) if g is None else g
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        self.last_loss = float(loss.detach())
        return self.last_loss
