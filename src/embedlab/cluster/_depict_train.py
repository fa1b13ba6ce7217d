"""DEPICT's training pieces: the layer-wise reconstruction losses and early stopping with
the best weights kept (the reference code's pretraining and head fit)."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from embedlab.cluster._depict_net import AEOutput

__all__ = ["HIDDEN_RECON_WEIGHT", "EarlyStopping", "clean_recon_loss", "noisy_recon_loss"]

#: weight of the hidden layers' reconstruction against the input's (the reference code)
HIDDEN_RECON_WEIGHT = 0.1


def _layerwise(out: AEOutput, x: torch.Tensor, targets: list[torch.Tensor]) -> torch.Tensor:
    loss = F.mse_loss(out.recon[0], x)
    for rec, tgt in zip(out.recon[1:], targets[1:], strict=True):
        loss = loss + HIDDEN_RECON_WEIGHT * F.mse_loss(rec, tgt)
    return loss


def noisy_recon_loss(net: nn.Module, xb: torch.Tensor) -> tuple[torch.Tensor, AEOutput]:
    """The training loss: the dropout-corrupted pass reconstructs the input and each clean
    encoder activation (weight :data:`HIDDEN_RECON_WEIGHT`); also returns the noisy pass."""
    net.eval()
    with torch.no_grad():
        clean = net(xb).hidden
    net.train()
    noisy: AEOutput = net(xb)
    return _layerwise(noisy, xb, clean), noisy


@torch.no_grad()
def clean_recon_loss(net: nn.Module, x: torch.Tensor, *, chunk: int = 1000) -> float:
    """The same loss with dropout off (the reference's validation loss), averaged over the
    rows of ``x`` in chunks."""
    net.eval()
    total = 0.0
    for start in range(0, x.shape[0], chunk):
        xb = x[start : start + chunk]
        out: AEOutput = net(xb)
        total += float(_layerwise(out, xb, out.hidden)) * xb.shape[0]
    return total / max(x.shape[0], 1)


class EarlyStopping:
    """Stop once more than ``patience`` checks have passed since the best (strictly
    improving) value of a monitored quantity, keeping a copy of the modules' weights at
    the best one (the reference code: patience 100 on the validation reconstruction loss,
    5 on the validation NMI of the head fit).

    ``mode``: ``"min"`` (a loss) or ``"max"`` (a score). ``patience=None`` never stops but
    still keeps the best weights.
    """

    def __init__(self, modules: list[nn.Module], *, patience: int | None, mode: str = "min"):
        self.modules = modules
        self.patience = patience
        self.sign = 1.0 if mode == "min" else -1.0
        self.best = np.inf
        self.best_step = -1
        self.steps = 0
        self._state: list[dict[str, torch.Tensor]] | None = None

    def step(self, value: float) -> bool:
        """Record one check's ``value``; True when training should stop."""
        if self.sign * value < self.best:
            self.best = self.sign * value
            self.best_step = self.steps
            self._state = [copy.deepcopy(m.state_dict()) for m in self.modules]
        self.steps += 1
        return self.patience is not None and self.steps - 1 - self.best_step > self.patience

    @property
    def best_value(self) -> float:
        return float(self.sign * self.best)

    def restore(self) -> None:
        """Load the best weights back (no-op before the first check)."""
        if self._state is not None:
            for m, state in zip(self.modules, self._state, strict=True):
                m.load_state_dict(state)
