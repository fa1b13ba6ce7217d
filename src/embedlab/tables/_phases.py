"""What the trainer hands a multi-phase table between its training phases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the data package imports tables (Field); avoid the cycle at run time
    from embedlab.data import CTRDataset

__all__ = ["PhaseContext"]


@dataclass
class PhaseContext:
    """The training run as a table sees it in ``start_phase`` / ``end_phase``.

    Attributes:
        train: the training rows (e.g. to count id frequencies).
        valid: the validation rows, or None.
        evaluate: validation AUC of the whole model in its current state (eval mode, no
            grad); raises ``ValueError`` when the trainer has no validation data.
        steps_per_epoch: optimizer steps in one epoch of a phase.
        max_epochs: the most epochs one phase trains (early stopping may end it sooner).
        seed: the trainer's seed, for searches that draw random numbers.
        valid_loss: the training objective of the whole model (BCE plus regularisation,
            as one training step computes it) on the validation rows ``rows`` (int64
            indices into ``valid``), in the model's current mode and with autograd, for
            bi-level searches that update architecture weights on validation batches;
            None where the trainer offers none (no validation data, or a trainer that
            does not support it).
    """

    train: CTRDataset
    valid: CTRDataset | None
    evaluate: Callable[[], float]
    steps_per_epoch: int
    max_epochs: int
    seed: int
    valid_loss: Callable[[torch.Tensor], torch.Tensor] | None = None
