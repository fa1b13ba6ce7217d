"""The loss protocol (:class:`MetricLoss`) and helpers shared by every loss."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from embedlab._validation import check_batch_labels, check_choice, check_embeddings

__all__ = [
    "InputKind",
    "MetricLoss",
    "NoPairsWarning",
    "Reduction",
    "check_label_batch",
    "is_empty_batch",
    "label_masks",
    "reduce_losses",
    "zero_loss",
]

#: what a loss's ``forward`` takes (see :class:`MetricLoss`): ``(embeddings, labels)``,
#: ``(views, labels)`` or ``(a, b)`` pairs
InputKind = Literal["labels", "views", "pairs"]
Reduction = Literal["mean", "sum", "mean_nonzero"]
REDUCTIONS = ("mean", "sum", "mean_nonzero")


#: floating dtypes that are upcast to float32 before a loss is computed
HALF_DTYPES = (torch.float16, torch.bfloat16)


class NoPairsWarning(UserWarning):
    """A batch is empty or has no positive (or no negative) pairs, so the loss is zero."""


def _upcast(value: Any) -> Any:
    """``value`` with every float16 / bfloat16 tensor (also inside lists and tuples) as float32."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in HALF_DTYPES else value
    if isinstance(value, (list, tuple)):
        return type(value)(_upcast(v) for v in value)
    return value


def _upcast_inputs(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return _upcast(args), {k: _upcast(v) for k, v in kwargs.items()}


class MetricLoss(nn.Module):
    """Base class of every loss: a module whose ``forward`` returns a scalar tensor.

    ``input_kind`` says what ``forward`` takes (a class default; wrappers such as
    :class:`~embedlab.losses.MatryoshkaLoss` copy it from the loss they wrap):

    - ``"labels"``: ``forward(embeddings (batch, dim), labels (batch,))``
    - ``"views"``: ``forward(views (batch, n_views, dim), labels (batch,) | None = None)``
    - ``"pairs"``: ``forward(a (batch, dim), b (batch, dim))``

    Losses may own parameters or buffers; a trainer adds ``loss.parameters()``
    to its optimizer. Classifier-like losses also implement ``predict``.

    Degenerate batches, the same rule for every loss (pytorch-metric-learning's):

    - an empty batch (0 rows), or a batch without the pairs a loss needs (no
      positive pair, no negative pair, no mined triplet), gives a zero loss that is
      still connected to the autograd graph (``(embeddings * 0).sum()``: ``backward``
      works and every gradient is 0). An empty batch and a batch without the
      positives / negatives the loss needs also warn with :class:`NoPairsWarning`;
    - invalid input (wrong shape, NaN, labels out of range) raises an error that
      names the parameter.

    Precision: float16 and bfloat16 inputs are upcast to float32 before the loss is
    computed (a forward pre-hook of this class, so every loss does it), and the loss
    is returned in float32, as ``torch.autocast`` does for losses; gradients reach
    the half-precision inputs in their own dtype. float32 and float64 inputs are
    computed and returned in their own dtype.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_forward_pre_hook(_upcast_inputs, with_kwargs=True)

    name: ClassVar[str] = ""
    input_kind: InputKind = "labels"
    #: a batch without a positive pair gives a zero loss and a :class:`NoPairsWarning`
    needs_positives: ClassVar[bool] = False
    #: a batch without a negative pair gives a zero loss and a :class:`NoPairsWarning`
    needs_negatives: ClassVar[bool] = False
    #: labels are real-valued regression targets rather than class ids
    float_labels: ClassVar[bool] = False

    def predict(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Class ids ``(batch,)`` for ``embeddings (batch, dim)`` (classifier-like losses only)."""
        raise NotImplementedError(f"{type(self).__name__} does not predict labels")

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.hyper_parameters().items())

    def hyper_parameters(self) -> dict[str, Any]:
        """The scalar hyper-parameters of this loss (for benchmark records)."""
        return {
            k: v
            for k, v in vars(self).items()
            if not k.startswith("_") and isinstance(v, (int, float, str, bool, tuple))
        }


def zero_loss(x: torch.Tensor) -> torch.Tensor:
    """A scalar zero that keeps ``x`` in the autograd graph (its gradient is zero)."""
    return (x * 0).sum()


def label_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pos, neg)`` boolean ``(batch, batch)`` masks: same label off the diagonal, other label."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def check_label_batch(
    embeddings: Any,
    labels: Any,
    *,
    needs_positives: bool = False,
    needs_negatives: bool = False,
    floating: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate a ``(batch, dim)`` batch and its labels.

    Returns ``(embeddings, labels, ok)``; ``ok`` is False (after a
    :class:`NoPairsWarning`) when the batch has no positive or no negative pair
    that the loss needs, and the caller then returns :func:`zero_loss`.
    """
    emb = check_embeddings("embeddings", embeddings)
    lab = check_batch_labels(labels, emb.shape[0], floating=floating)
    lab = lab.to(emb.device)
    return (
        emb,
        lab,
        has_pairs(lab, needs_positives=needs_positives, needs_negatives=needs_negatives),
    )


def is_empty_batch(n: int) -> bool:
    """Warn (:class:`NoPairsWarning`) and return True when a batch has ``n == 0`` rows."""
    if n == 0:
        warnings.warn("empty batch (0 rows): the loss is 0", NoPairsWarning, stacklevel=4)
        return True
    return False


def has_pairs(labels: torch.Tensor, *, needs_positives: bool, needs_negatives: bool) -> bool:
    """Warn and return False when the batch is empty or the labels give no positive /
    no negative pair that the loss needs."""
    if is_empty_batch(labels.shape[0]):
        return False
    if needs_positives:
        n_unique = int(torch.unique(labels).numel())
        if n_unique == labels.shape[0]:
            warnings.warn(
                "no positive pairs in the batch: every label occurs once; the loss is 0. "
                "Use a class-balanced sampler (ClassBalancedSampler) with k >= 2.",
                NoPairsWarning,
                stacklevel=3,
            )
            return False
    if needs_negatives and labels.numel() and bool((labels == labels[0]).all()):
        warnings.warn(
            "no negative pairs in the batch: all labels are equal; the loss is 0",
            NoPairsWarning,
            stacklevel=3,
        )
        return False
    return True


def check_reduction(value: Any) -> Reduction:
    check_choice("reduction", value, REDUCTIONS)
    return value  # type: ignore[no-any-return]


def reduce_losses(losses: torch.Tensor, reduction: Reduction, like: torch.Tensor) -> torch.Tensor:
    """Reduce per-item losses: mean, sum, or mean over the non-zero ones (as PML's reducer).

    An empty ``losses`` gives :func:`zero_loss` of ``like``.
    """
    if losses.numel() == 0:
        return zero_loss(like)
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean_nonzero":
        nonzero = losses > 0
        n = nonzero.sum()
        if int(n) == 0:
            return losses.sum() * 0
        return losses.sum() / n
    return losses.mean()
