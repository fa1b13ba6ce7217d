"""BT^2 with the paper's two chained basis transformations and its training losses.

Zhou et al., "BT^2: Backward-compatible Training with Basis Transformation", ICCV 2023; read
from the authors' code (``ResNet_ortho`` / ``BasisChange`` and ``TransferTrainer``). The
single-transformation simplification stays in :mod:`embedlab.training.compat`
(``train_bt2``); :func:`train_bt2_chained` is the paper's version (``n_transforms = 2``).

Architecture (:class:`ChainedCompatibleEncoder`): the new backbone gives ``f`` (``d_new``
dims, the "new'" feature) and a head gives ``a`` (``d_extra`` fresh dims)::

    u   = [normalize(a), Q1 (C * normalize(f))]          # d_extra + d_new dims, Q1 (d_new, d_new)
    out = [Q2 u[:, :d_old], u[:, d_old:]]                  # Q2 (d_old, d_old)

``Q1`` and ``Q2`` are learnable orthonormal matrices (``torch`` orthogonal parametrisation),
so ``out = B [a_hat, C f_hat]`` with ``B = diag(Q2, I) diag(I, Q1)`` orthonormal: the new'
feature is kept whole (no information lost), only ``d_extra`` dims are added, and the first
``d_old`` dims of ``out`` are the old-compatible part compared with an old gallery.

Training objective (the authors' ``TransferTrainer``, their weights as defaults)::

    L = task(f, y)                                         # the new' model's own loss
        + influence_weight * CE(normalize(out_old) @ P^T / T, y)   # P: mean old feature per class
        + old_weight       * (1 - cos(out_old, phi_old(x)))         # match the frozen old model
        + reference_weight * (1 - cos(f, phi_ref(x)))               # match an independent new model

with ``out_old = out[:, :d_old]``, ``P`` the unnormalised mean of the L2-normalised old
embeddings of each class (their "pseudo classifier") and ``T = 1`` (no temperature in their
code). The paper's task term is cross-entropy of a linear classifier on ``f``; here it is
any metric loss taking labels.

Differences from the authors' code that remain: the task term (a metric loss, not CE of a
linear head); the extra head is one linear layer on ``relu(f)`` (theirs: a layer on the
ReLU of a wider ``d_new + d_old`` backbone output); the schedule (their CIFAR-100 config:
Adam 1e-3, cosine decay with 5 warm-up epochs, 100 epochs, batch 128, d = 128, 32 extra
dims, C = 2 or 3; ``benchmarks/bt2_mnist.py``: Adam 1e-3 constant, 4 epochs, d = 32,
32 extra dims, C = 3).

Claim (new-model queries on the old gallery beat old/old): does NOT reproduce here.
``benchmarks/bt2_mnist.py`` (small CNNs, MNIST t10k digits 0-4 -> unseen 5-9, seeds 0-2,
P@1 / MAP@R, leave-one-out): old/old 0.886 / 0.286; this chained version 0.540 / 0.226
(new/new 0.902 / 0.317); the single-transformation ``train_bt2`` 0.745 / 0.294 (new/new
0.956 / 0.421). At 12 epochs (seed 0) the chained version reaches 0.620 / 0.244, still
below old/old 0.897 / 0.297. The paper's cosine matching to a weak, briefly trained old
model does not give new queries that beat the old model on classes neither model saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from embedlab._validation import check_int, check_int_in_range, check_positive_float
from embedlab.data.labeled import LabeledData
from embedlab.training.batches import embed
from embedlab.training.compat import BasisTransform
from embedlab.training.metric import MetricTrainer, MetricTrainResult, loss_input_kind

__all__ = [
    "ChainedBT2Loss",
    "ChainedBT2Result",
    "ChainedCompatibleEncoder",
    "pseudo_classifier",
    "train_bt2_chained",
]


class ChainedCompatibleEncoder(nn.Module):
    """Backbone + extra head + two chained basis transformations (the paper's BT^2 model).

    Args:
        backbone: inputs -> ``(batch, d_new)``, the new' feature ``f``.
        d_old: dims of the old model's embedding (the compatible prefix of the output).
        d_new: the backbone's output size.
        d_extra: dims added for compatibility (``0 <= d_extra <= d_old``); the output has
            ``d_new + d_extra`` dims and ``d_old <= d_new + d_extra`` is required.
        scale: ``C``, the norm given to ``f`` before ``Q1`` (the authors use 3).
        old_encoder, reference_encoder: frozen models whose embeddings are appended in
            training mode for :class:`ChainedBT2Loss` (kept out of the module tree).
        seed: initialisation of the head and the transformations.
    """

    def __init__(
        self,
        backbone: nn.Module,
        d_old: int,
        d_new: int,
        d_extra: int,
        *,
        scale: float = 3.0,
        old_encoder: nn.Module | None = None,
        reference_encoder: nn.Module | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.d_old = check_int("d_old", d_old, min_value=1)
        self.d_new = check_int("d_new", d_new, min_value=1)
        self.d_extra = check_int_in_range("d_extra", d_extra, 0, self.d_old, why=" (d_old)")
        self.dim = self.d_new + self.d_extra
        if self.d_old > self.dim:
            raise ValueError(
                f"d_new + d_extra must be >= d_old={self.d_old}, got {self.d_new} + {self.d_extra}"
            )
        self.scale = check_positive_float("scale", scale)
        self.backbone = backbone
        with torch.random.fork_rng(devices=[]):  # seeded head, global RNG untouched
            torch.manual_seed(check_int("seed", seed, min_value=0))
            self.head = nn.Linear(self.d_new, max(self.d_extra, 1))
        self.q1 = BasisTransform(self.d_new, seed=seed)
        self.q2 = BasisTransform(self.d_old, seed=seed + 1)
        self._old = [old_encoder] if old_encoder is not None else []
        self._ref = [reference_encoder] if reference_encoder is not None else []

    @property
    def has_reference(self) -> bool:
        """Whether a reference (independent new) encoder is attached."""
        return bool(self._ref)

    def matrix(self) -> torch.Tensor:
        """``B`` ``(dim, dim)`` orthonormal: ``out = [a_hat, C f_hat] @ B.T``."""
        dim, e, o = self.dim, self.d_extra, self.d_old
        b1 = torch.eye(dim)
        b1[e:, e:] = self.q1.matrix
        b2 = torch.eye(dim)
        b2[:o, :o] = self.q2.matrix
        return b2 @ b1

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(out (batch, dim), f_hat (batch, d_new))`` for inputs ``x``."""
        f = self.backbone(x)
        if f.dim() != 2 or f.shape[1] != self.d_new:
            raise ValueError(
                f"backbone output must have shape (batch, d_new={self.d_new}), got {tuple(f.shape)}"
            )
        f_hat = nn.functional.normalize(f, dim=1)
        a_hat = nn.functional.normalize(self.head(torch.relu(f)), dim=1)[:, : self.d_extra]
        u = torch.cat([a_hat, self.q1(self.scale * f_hat)], dim=1)
        out = torch.cat([self.q2(u[:, : self.d_old]), u[:, self.d_old :]], dim=1)
        return out, f_hat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs -> ``(batch, dim)``; in training mode ``[out, f_hat, phi_old, phi_ref]``."""
        out, f_hat = self.parts(x)
        if not self.training or not (self._old or self._ref):
            return out
        pieces = [out, f_hat]
        for frozen in self._old + self._ref:
            frozen.eval()
            with torch.no_grad():
                pieces.append(nn.functional.normalize(frozen(x).to(out.dtype), dim=1))
        return torch.cat(pieces, dim=1)

    def forward_old(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs -> ``(batch, d_old)``: the part comparable with old-model embeddings."""
        return self.parts(x)[0][:, : self.d_old]


def pseudo_classifier(old_encoder: nn.Module, data: LabeledData, n_classes: int) -> torch.Tensor:
    """``(n_classes, d_old)`` mean L2-normalised old embedding per class (not renormalised)."""
    labels = data.y
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(
            f"labels must be class ids in [0, {n_classes}), "
            f"got range [{labels.min()}, {labels.max()}]"
        )
    counts = np.bincount(labels, minlength=n_classes)
    if (counts == 0).any():
        raise ValueError(f"every class needs samples; class {int(np.argmin(counts))} has none")
    emb = nn.functional.normalize(torch.from_numpy(embed(old_encoder, data.x)), dim=1)
    sums = torch.zeros(n_classes, emb.shape[1]).index_add_(0, torch.from_numpy(labels), emb)
    return sums / torch.from_numpy(counts).float()[:, None]


class ChainedBT2Loss(nn.Module):
    """The authors' BT^2 objective on :class:`ChainedCompatibleEncoder`'s training output.

    Args:
        task_loss: loss of the new' feature ``f`` (``"labels"`` input kind).
        prototypes: ``(n_classes, d_old)`` from :func:`pseudo_classifier`.
        d_new, d_extra: as the encoder's; the old/reference parts are located from them.
        with_reference: whether the embeddings carry a reference-model part.
        influence_weight, old_weight, reference_weight: the authors use 10, 10, 1.
        temperature: of the influence classifier (the authors' code: 1).
    """

    input_kind = "labels"

    def __init__(
        self,
        task_loss: nn.Module,
        prototypes: torch.Tensor,
        *,
        d_new: int,
        d_extra: int,
        with_reference: bool,
        influence_weight: float = 10.0,
        old_weight: float = 10.0,
        reference_weight: float = 1.0,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if loss_input_kind(task_loss) != "labels":
            raise ValueError(
                f"task_loss must take labels, got input_kind {loss_input_kind(task_loss)!r}"
            )
        self.task_loss = task_loss
        self.register_buffer("prototypes", prototypes.float())
        self.d_old = int(prototypes.shape[1])
        self.d_new = check_int("d_new", d_new, min_value=1)
        self.d_extra = check_int("d_extra", d_extra, min_value=0)
        self.with_reference = bool(with_reference)
        self.influence_weight = check_positive_float(
            "influence_weight", influence_weight, strict=False
        )
        self.old_weight = check_positive_float("old_weight", old_weight, strict=False)
        self.reference_weight = check_positive_float(
            "reference_weight", reference_weight, strict=False
        )
        self.temperature = check_positive_float("temperature", temperature)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        dim = self.d_new + self.d_extra
        expected = dim + self.d_new + self.d_old + (self.d_new if self.with_reference else 0)
        if emb.dim() != 2 or emb.shape[1] != expected:
            raise ValueError(
                f"emb must have shape (batch, {expected}) = [out, f_hat, old(, reference)], "
                f"got {tuple(emb.shape)}"
            )
        out, f_hat = emb[:, :dim], emb[:, dim : dim + self.d_new]
        lo = dim + self.d_new
        phi_old = emb[:, lo : lo + self.d_old]
        compat = nn.functional.normalize(out[:, : self.d_old], dim=1)
        protos: torch.Tensor = self.prototypes  # type: ignore[assignment]
        logits = compat @ protos.T / self.temperature
        total: torch.Tensor = self.task_loss(f_hat, labels)
        total = total + self.influence_weight * nn.functional.cross_entropy(logits, labels)
        total = total + self.old_weight * (1 - (compat * phi_old).sum(1).mean())
        if self.with_reference:
            phi_ref = emb[:, lo + self.d_old :]
            total = total + self.reference_weight * (1 - (f_hat * phi_ref).sum(1).mean())
        return total


@dataclass
class ChainedBT2Result:
    """The trained :class:`ChainedCompatibleEncoder` and the trainer's measurements."""

    encoder: ChainedCompatibleEncoder
    train: MetricTrainResult


def train_bt2_chained(
    old_encoder: nn.Module,
    backbone: nn.Module,
    task_loss: nn.Module,
    train: LabeledData,
    valid: LabeledData | None = None,
    *,
    d_old: int,
    d_new: int,
    d_extra: int,
    trainer: MetricTrainer,
    reference_encoder: nn.Module | None = None,
    influence_weight: float = 10.0,
    old_weight: float = 10.0,
    reference_weight: float = 1.0,
    temperature: float = 1.0,
    scale: float = 3.0,
    seed: int = 0,
) -> ChainedBT2Result:
    """Train the paper's BT^2 (two chained basis transformations) against a frozen old model.

    Args:
        old_encoder: the frozen old model, inputs -> ``(batch, d_old)``.
        backbone: the new model, inputs -> ``(batch, d_new)``.
        task_loss: metric loss of the new' feature (``"labels"`` kind).
        train, valid: training data (labels ``0..n_classes-1``), optional validation data.
        d_old, d_new, d_extra: see :class:`ChainedCompatibleEncoder`.
        trainer: the :class:`MetricTrainer` that runs the optimisation.
        reference_encoder: an independently trained new model ``(batch, d_new)`` that ``f``
            is matched to (the paper's phi_new'); without it the reference term is dropped.
        influence_weight, old_weight, reference_weight, temperature: see
            :class:`ChainedBT2Loss`.
        scale: ``C``; seed: initialisation of the head and transformations.
    """
    n_classes = int(train.y.max()) + 1
    for frozen in (old_encoder, reference_encoder):
        if frozen is not None:
            for p in frozen.parameters():
                p.requires_grad_(False)
    protos = pseudo_classifier(old_encoder, train, n_classes)
    if protos.shape[1] != d_old:
        raise ValueError(f"old_encoder must output d_old={d_old} dims, got {protos.shape[1]}")
    encoder = ChainedCompatibleEncoder(
        backbone,
        d_old,
        d_new,
        d_extra,
        scale=scale,
        old_encoder=old_encoder,
        reference_encoder=reference_encoder,
        seed=seed,
    )
    loss = ChainedBT2Loss(
        task_loss,
        protos,
        d_new=d_new,
        d_extra=d_extra,
        with_reference=reference_encoder is not None,
        influence_weight=influence_weight,
        old_weight=old_weight,
        reference_weight=reference_weight,
        temperature=temperature,
    )
    result = trainer.fit(encoder, loss, train, valid)
    return ChainedBT2Result(encoder=encoder, train=result)
