"""Backward-compatible training with a basis transformation (BT^2).

Zhou et al., "BT^2: Backward-compatible Training with Basis Transformation", ICCV 2023,
building on Shen et al., "Towards Backward-Compatible Representation Learning" (BCT), CVPR 2020.

A new backbone produces ``z`` with ``d_old + d_extra`` dims; a learnable orthonormal basis
transformation ``Q`` (``torch.nn.utils.parametrizations.orthogonal``, so ``Q^T Q = I`` by
construction) rotates it, ``u = Q z``. The first ``d_old`` dims of ``u`` live in the old
model's space: new queries are compared with an old gallery there, no backfilling. The
training objective is::

    L = task_loss(u, labels) + influence_weight * CE(cos(u[:, :d_old], p_c) / T, labels)
        + match_weight * InfoNCE(u[:, :d_old] -> phi_old(x) among the batch's old embeddings)

where ``p_c`` are the frozen old encoder's class prototypes (normalised mean old embedding of
each training class, BCT's influence loss with the old classifier built from the data), and
``task_loss`` is any metric loss on the full ``u`` (new/new retrieval; ``Q`` is orthonormal so
cosine similarities of ``u`` equal those of ``z`` and the extra dimensions keep whatever the
old space cannot hold). This is a single-BT simplification of the paper, which chains two BTs
and also matches an independently trained new model (that version, with the authors' losses,
is :func:`embedlab.training.compat_chain.train_bt2_chained`); the transformation is exported
for the retrieval side (a compat index maps new queries with ``Q`` and keeps the first
``d_old`` dims). Measured (``benchmarks/bt2_mnist.py --n-transforms 1``, unseen MNIST digits,
seeds 0-2, mean P@1 / MAP@R): new/old 0.745 / 0.294 vs old/old 0.886 / 0.286: the claim
holds for MAP@R, not for P@1 (the chained version: 0.540 / 0.226).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from embedlab._io import atomic_write_bytes
from embedlab._validation import check_int, check_positive_float
from embedlab.data.labeled import LabeledData
from embedlab.evaluate import retrieval_metrics
from embedlab.training.batches import embed
from embedlab.training.metric import MetricTrainer, MetricTrainResult, loss_input_kind

__all__ = [
    "BT2Loss",
    "BT2Result",
    "BasisTransform",
    "CompatibleEncoder",
    "compatibility_metrics",
    "load_basis_transform",
    "old_prototypes",
    "save_basis_transform",
    "train_bt2",
]

_FORMAT = "embedlab.bt2"


class BasisTransform(nn.Module):
    """A learnable ``(n, n)`` orthonormal matrix ``Q`` applied as ``u = Q z`` on rows.

    Args:
        n: size of the transformed vectors.
        seed: initialisation of the underlying parameter.

    Example:
        >>> bt = BasisTransform(4)
        >>> q = bt.matrix.detach()
        >>> bool(torch.allclose(q.T @ q, torch.eye(4), atol=1e-5))
        True
    """

    def __init__(self, n: int, *, seed: int = 0) -> None:
        super().__init__()
        self.n = check_int("n", n, min_value=1)
        linear = nn.Linear(self.n, self.n, bias=False)
        with torch.no_grad():
            gen = torch.Generator().manual_seed(check_int("seed", seed, min_value=0))
            linear.weight.copy_(
                torch.eye(self.n) + 0.01 * torch.randn(self.n, self.n, generator=gen)
            )
        self.linear = nn.utils.parametrizations.orthogonal(linear)

    @property
    def matrix(self) -> torch.Tensor:
        """``Q`` ``(n, n)``, orthonormal."""
        weight = self.linear.weight
        assert isinstance(weight, torch.Tensor)
        return weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``(batch, n)`` -> ``(batch, n)``."""
        out: torch.Tensor = self.linear(z)
        return out


class CompatibleEncoder(nn.Module):
    """A new backbone followed by a basis transformation; ``forward`` gives the new embedding.

    Args:
        backbone: maps inputs to ``(batch, d_old + d_extra)``.
        d_old: dims of the old model's embedding (the compatible prefix).
        d_new: the backbone's output size ``d_old + d_extra`` (``> d_old`` adds dimensions,
            ``== d_old`` is plain BCT with a rotation).
        seed: initialisation of the transformation.
    """

    def __init__(
        self,
        backbone: nn.Module,
        d_old: int,
        d_new: int,
        *,
        old_encoder: nn.Module | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.d_old = check_int("d_old", d_old, min_value=1)
        self.d_new = check_int("d_new", d_new, min_value=self.d_old)
        self.backbone = backbone
        self.transform = BasisTransform(self.d_new, seed=seed)
        # Kept out of the module tree: frozen, not saved with the new model's weights.
        self._old = [old_encoder] if old_encoder is not None else []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs -> ``(batch, d_new)``: the new embedding ``Q z``.

        In training mode with an ``old_encoder`` the frozen old embedding is appended,
        ``(batch, d_new + d_old)``, for :class:`BT2Loss`'s matching term.
        """
        z = self.backbone(x)
        if z.dim() != 2 or z.shape[1] != self.d_new:
            raise ValueError(
                f"backbone output must have shape (batch, d_new={self.d_new}), got {tuple(z.shape)}"
            )
        out: torch.Tensor = self.transform(z)
        if self.training and self._old:
            old = self._old[0]
            old.eval()
            with torch.no_grad():
                old_emb = old(x).to(out.dtype)
            out = torch.cat([out, old_emb], dim=1)
        return out

    def forward_old(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs -> ``(batch, d_old)``: the part comparable with old-model embeddings."""
        return self.forward(x)[:, : self.d_old]


def old_prototypes(old_encoder: nn.Module, data: LabeledData, n_classes: int) -> torch.Tensor:
    """``(n_classes, d_old)`` L2-normalised mean old embedding of each class ``0..n_classes-1``.

    Raises:
        ValueError: a label outside ``[0, n_classes)`` or a class without samples.
    """
    labels = data.y
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(
            f"labels must be class ids in [0, {n_classes}) (remap them first), "
            f"got range [{labels.min()}, {labels.max()}]"
        )
    counts = np.bincount(labels, minlength=n_classes)
    if (counts == 0).any():
        raise ValueError(
            f"every class needs samples for its prototype; class {int(np.argmin(counts))} has none"
        )
    emb = torch.from_numpy(embed(old_encoder, data.x))
    emb = nn.functional.normalize(emb, dim=1)
    sums = torch.zeros(n_classes, emb.shape[1]).index_add_(0, torch.from_numpy(labels), emb)
    return nn.functional.normalize(sums, dim=1)


class BT2Loss(nn.Module):
    """``task(u) + influence_weight * CE(cos(u_old, prototypes) / T, y) + match_weight * M``.

    ``u_old = u[:, :d_old]``; ``M`` is a cross-model InfoNCE matching each new ``u_old`` with
    the frozen old embedding of the same input among the batch's (BT^2's matching to
    ``phi_old``), computed when the embeddings arrive with the old ones appended
    (``(batch, d_new + d_old)``, as :class:`CompatibleEncoder` gives in training mode with
    an ``old_encoder``; ``d_new`` must then be given).

    Takes what the task loss takes (``"labels"``: ``u (batch, d_new)``; ``"views"``:
    ``(batch, n_views, d_new)``, the influence term then covers every view).

    Args:
        task_loss: the new model's metric loss on the full embedding.
        prototypes: ``(n_classes, d_old)`` old class prototypes (:func:`old_prototypes`).
        influence_weight: weight of the prototype-classification term (BCT's lambda).
        match_weight: weight of the matching term.
        temperature: softmax temperature of the cosine classifier.
    """

    def __init__(
        self,
        task_loss: nn.Module,
        prototypes: torch.Tensor,
        *,
        influence_weight: float = 1.0,
        match_weight: float = 1.0,
        temperature: float = 0.1,
        d_new: int | None = None,
    ) -> None:
        super().__init__()
        kind = loss_input_kind(task_loss)
        if kind not in ("labels", "views"):
            raise ValueError(
                f"BT2Loss needs a task loss taking labels or views, got input_kind {kind!r}"
            )
        self.input_kind = kind
        self.task_loss = task_loss
        self.register_buffer("prototypes", nn.functional.normalize(prototypes.float(), dim=1))
        self.d_old = int(prototypes.shape[1])
        self.influence_weight = check_positive_float(
            "influence_weight", influence_weight, strict=False
        )
        self.match_weight = check_positive_float("match_weight", match_weight, strict=False)
        self.temperature = check_positive_float("temperature", temperature)
        self.d_new = None if d_new is None else check_int("d_new", d_new, min_value=self.d_old)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        old_emb: torch.Tensor | None = None
        if self.d_new is not None and emb.shape[-1] == self.d_new + self.d_old:
            emb, old_emb = emb[..., : self.d_new], emb[..., self.d_new :]
        task: torch.Tensor = self.task_loss(emb, labels)
        flat = emb.reshape(-1, emb.shape[-1])  # views: (batch * n_views, d_new)
        flat_labels = labels.repeat_interleave(flat.shape[0] // labels.shape[0])
        old_part = nn.functional.normalize(flat[:, : self.d_old], dim=1)
        protos: torch.Tensor = self.prototypes  # type: ignore[assignment]
        logits = old_part @ protos.T / self.temperature
        total = task + self.influence_weight * nn.functional.cross_entropy(logits, flat_labels)
        if old_emb is not None and self.match_weight > 0:
            # cross-model InfoNCE: each new query must retrieve its own old embedding
            old_flat = nn.functional.normalize(old_emb.reshape(-1, self.d_old), dim=1)
            sim = old_part @ old_flat.T / self.temperature
            target = torch.arange(sim.shape[0], device=sim.device)
            total = total + self.match_weight * nn.functional.cross_entropy(sim, target)
        return total


@dataclass
class BT2Result:
    """The trained :class:`CompatibleEncoder` and the trainer's measurements."""

    encoder: CompatibleEncoder
    train: MetricTrainResult


def train_bt2(
    old_encoder: nn.Module,
    backbone: nn.Module,
    task_loss: nn.Module,
    train: LabeledData,
    valid: LabeledData | None = None,
    *,
    d_old: int,
    d_new: int,
    trainer: MetricTrainer,
    influence_weight: float = 1.0,
    match_weight: float = 1.0,
    temperature: float = 0.1,
    seed: int = 0,
) -> BT2Result:
    """Train ``backbone`` + a basis transformation to be backward compatible with ``old_encoder``.

    Args:
        old_encoder: the frozen old model, inputs -> ``(batch, d_old)``.
        backbone: the new model, inputs -> ``(batch, d_new)``.
        task_loss: metric loss for the new embedding (``"labels"`` or ``"views"`` kind).
        train: training data, labels ``0..n_classes-1``.
        valid: optional data for checkpoint selection (new/new precision@1).
        d_old, d_new: old and new embedding sizes (``d_new >= d_old``).
        trainer: the :class:`MetricTrainer` that runs the optimisation.
        influence_weight, match_weight, temperature: see :class:`BT2Loss`.
        seed: initialisation of the transformation.
    """
    n_classes = int(train.y.max()) + 1
    for p in old_encoder.parameters():
        p.requires_grad_(False)
    protos = old_prototypes(old_encoder, train, n_classes)
    if protos.shape[1] != d_old:
        raise ValueError(f"old_encoder must output d_old={d_old} dims, got {protos.shape[1]}")
    encoder = CompatibleEncoder(backbone, d_old, d_new, old_encoder=old_encoder, seed=seed)
    loss = BT2Loss(
        task_loss,
        protos,
        influence_weight=influence_weight,
        match_weight=match_weight,
        temperature=temperature,
        d_new=d_new,
    )
    result = trainer.fit(encoder, loss, train, valid)
    return BT2Result(encoder=encoder, train=result)


def compatibility_metrics(
    old_encoder: nn.Module, new_encoder: nn.Module, test: LabeledData
) -> dict[str, float]:
    """Leave-one-out precision@1 and MAP@R of old/old, new-query/old-gallery and new/new.

    ``new_encoder`` is a :class:`CompatibleEncoder` or any encoder with an int ``d_old``
    whose first ``d_old`` output dims are the old-compatible part (e.g. the chained one).

    The compatibility criterion of BCT: ``new_old_precision_at_1 > old_old_precision_at_1``.
    """
    d_old = getattr(new_encoder, "d_old", None)
    if not isinstance(d_old, int):
        raise TypeError(f"new_encoder must have an int d_old, got {d_old!r}")
    old = embed(old_encoder, test.x)
    new = embed(new_encoder, test.x)
    out: dict[str, float] = {}
    pairs = {
        "old_old": (old, old),
        "new_old": (new[:, :d_old], old),
        "new_new": (new, new),
    }
    for name, (q, g) in pairs.items():
        m = retrieval_metrics(q, test.y, g, test.y, leave_one_out=True, k=(1,))
        out[f"{name}_precision_at_1"] = m["precision_at_1"]
        out[f"{name}_map_at_r"] = m["map_at_r"]
    return out


def save_basis_transform(
    path: str | os.PathLike[str], transform: BasisTransform | torch.Tensor, d_old: int
) -> Path:
    """Write ``Q`` ``(n, n)`` float32 and ``d_old`` to a safetensors file, atomically."""
    from safetensors.torch import save

    q = transform.matrix if isinstance(transform, BasisTransform) else transform
    q = q.detach().cpu().float().contiguous()
    if q.dim() != 2 or q.shape[0] != q.shape[1]:
        raise ValueError(f"transform must be a square (n, n) matrix, got {tuple(q.shape)}")
    d_old = check_int("d_old", d_old, min_value=1)
    if d_old > q.shape[0]:
        raise ValueError(f"d_old must be <= n={q.shape[0]}, got {d_old}")
    data = save({"transform": q}, metadata={"format": _FORMAT, "d_old": str(d_old)})
    return atomic_write_bytes(path, data)


def load_basis_transform(path: str | os.PathLike[str]) -> tuple[torch.Tensor, int]:
    """Read ``(Q (n, n), d_old)`` written by :func:`save_basis_transform`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"transform file does not exist: {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:  # type: ignore[no-untyped-call]
            meta: dict[str, Any] = fh.metadata() or {}
            q = fh.get_tensor("transform")
    except Exception as exc:
        raise ValueError(f"{path.name}: not a readable BT^2 transform file ({exc})") from None
    if meta.get("format") != _FORMAT or "d_old" not in meta:
        raise ValueError(f"{path.name}: not an embedlab BT^2 transform (metadata {meta})")
    return q, int(meta["d_old"])
