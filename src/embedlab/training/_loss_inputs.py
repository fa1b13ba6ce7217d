"""What a metric trainer feeds a loss, and plain loss callables wrapped as modules."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from embedlab._validation import check_choice

__all__ = ["LossFn", "as_loss_module", "loss_input_kind"]

#: a plain loss function ``(embeddings (batch, dim), labels (batch,)) -> ()``
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class _CallableLoss(nn.Module):
    """A plain ``(embeddings, labels) -> scalar`` callable as a parameterless labels loss."""

    input_kind = "labels"

    def __init__(self, fn: LossFn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.fn(embeddings, labels)


def as_loss_module(loss: nn.Module | LossFn) -> nn.Module:
    if isinstance(loss, nn.Module):
        return loss
    if not callable(loss):
        raise TypeError(
            "loss must be a torch.nn.Module or a callable (embeddings, labels) -> scalar "
            f"tensor, got {type(loss).__name__}"
        )
    return _CallableLoss(loss)


def loss_input_kind(loss: nn.Module) -> str:
    """What the trainer feeds ``loss``: its ``input_kind``, except two losses that need more
    than embeddings: layer-wise losses (``needs_layers = True``, or Starbucks) get
    ``encoder.forward_layers(x)``, and MI-Mix gets clean and input-mixed embeddings with the
    mixing proportions (``"mix"``: mixing at layer 0, the input, as the encoders here expose
    no mid-network entry point). A curriculum loss (one with ``phase_input_kind``, e.g.
    C²LR) gives ``"curriculum"``: the trainer asks it for its current kind at every step."""
    name = getattr(loss, "name", "")
    if callable(getattr(loss, "phase_input_kind", None)):
        return "curriculum"
    if getattr(loss, "needs_layers", False) or name == "starbucks":
        return "layers"
    if name == "mimix":
        return "mix"
    kind = str(getattr(loss, "input_kind", "labels"))
    check_choice("loss.input_kind", kind, ("labels", "views", "pairs", "layers"))
    return kind
