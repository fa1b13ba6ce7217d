"""Equiangular Basis Vectors: fixed near-orthogonal class vectors as the classifier."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from embedlab._validation import (
    check_batch_labels,
    check_choice,
    check_class_ids,
    check_embeddings,
    check_int,
    check_positive_float,
)
from embedlab.losses._base import MetricLoss, is_empty_batch, zero_loss
from embedlab.losses._registry import register_loss

__all__ = ["EBVLoss", "generate_ebv"]


def generate_ebv(
    n_classes: int,
    dim: int,
    *,
    eps: float = 0.05,
    steps: int = 300,
    lr: float = 0.01,
    seed: int = 0,
) -> torch.Tensor:
    """``(n_classes, dim)`` unit vectors with pairwise ``|cos|`` pushed below ``eps``.

    Minimises ``sum_{i != j} relu(|cos(v_i, v_j)| - eps)`` with Adam (the EBV
    generation step), stopping early once the sum is 0. The seeded start is a
    random orthonormal set when ``n_classes <= dim`` (already optimal: the loop
    ends at once) and Gaussian otherwise, where the vectors spread as evenly as
    the space allows.

    Shen et al., "Equiangular Basis Vectors", CVPR 2023.

    Args:
        n_classes: number of vectors, ``>= 1``.
        dim: their dimension, ``>= 1``.
        eps: tolerated ``|cos|``, ``>= 0``.
        steps: optimisation steps, ``>= 0``.
        lr: Adam learning rate.
        seed: seeds the start.

    Example:
        >>> v = generate_ebv(10, 32, seed=0)
        >>> v.shape, bool((v @ v.T - torch.eye(10)).abs().max() < 0.1)
        (torch.Size([10, 32]), True)
    """
    n = check_int("n_classes", n_classes, min_value=1)
    d = check_int("dim", dim, min_value=1)
    eps_ = check_positive_float("eps", eps, strict=False)
    steps_ = check_int("steps", steps, min_value=0)
    lr_ = check_positive_float("lr", lr)
    gen = torch.Generator().manual_seed(check_int("seed", seed))
    with torch.enable_grad():
        start = torch.randn(max(n, d), d, generator=gen, dtype=torch.float64)
        if n <= d:
            start = torch.linalg.qr(start.T)[0].T[:n]  # (n, d) orthonormal rows
        v = start[:n].to(torch.float32).requires_grad_(True)
        opt = torch.optim.Adam([v], lr=lr_)
        off = ~torch.eye(n, dtype=torch.bool)
        for _ in range(steps_):
            u = F.normalize(v, dim=1)
            cos = (u @ u.T)[off]
            loss = F.relu(cos.abs() - eps_).sum()
            if float(loss.detach()) == 0.0:
                break
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    return F.normalize(v.detach(), dim=1)


@register_loss("ebv")
class EBVLoss(MetricLoss):
    """Train embeddings towards fixed class vectors (EBV); predict the nearest vector.

    ``objective="ce"`` (the paper's): cross-entropy over logits
    ``cos(x_i, v_c) / temperature``. ``objective="spherical"``: mean geodesic
    distance ``arccos(cos(x_i, v_{y_i}))`` to the own class vector. Labels
    with a single sample are fine (no pairs are needed).

    Shen et al., "Equiangular Basis Vectors", CVPR 2023.

    Args:
        dim: embedding dimension.
        n_classes: number of classes (labels in ``[0, n_classes)``).
        eps, steps, seed: passed to :func:`generate_ebv`.
        temperature: softmax temperature, ``> 0``.
        objective: ``"ce"`` or ``"spherical"``.

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,)) -> ()``;
        ``predict(embeddings (batch, dim)) -> (batch,)``; buffer ``vectors (n_classes, dim)``.

    Example:
        >>> import torch
        >>> loss_fn = EBVLoss(dim=16, n_classes=4)
        >>> float(loss_fn(torch.randn(8, 16), torch.arange(8) % 4)) > 0
        True
        >>> loss_fn.predict(loss_fn.vectors).tolist()
        [0, 1, 2, 3]
    """

    vectors: torch.Tensor

    def __init__(
        self,
        *,
        dim: int,
        n_classes: int,
        eps: float = 0.05,
        steps: int = 300,
        temperature: float = 0.07,
        objective: Literal["ce", "spherical"] = "ce",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.dim = check_int("dim", dim, min_value=1)
        self.n_classes = check_int("n_classes", n_classes, min_value=1)
        self.eps = eps
        self.temperature = check_positive_float("temperature", temperature)
        self.objective = check_choice("objective", objective, ("ce", "spherical"))
        self.register_buffer(
            "vectors", generate_ebv(self.n_classes, self.dim, eps=eps, steps=steps, seed=seed)
        )

    def cosines(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``(batch, n_classes)`` cosine of each embedding to each class vector."""
        emb = check_embeddings("embeddings", embeddings)
        if emb.shape[1] != self.dim:
            raise ValueError(f"embeddings must have dim={self.dim}, got {emb.shape[1]}")
        return F.normalize(emb, dim=1) @ self.vectors.to(emb.dtype).T

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosines(embeddings)
        lab = check_batch_labels(labels, cos.shape[0]).to(cos.device)
        check_class_ids("labels", lab, self.n_classes)
        if is_empty_batch(cos.shape[0]):
            return zero_loss(cos)
        if self.objective == "ce":
            return F.cross_entropy(cos / self.temperature, lab)
        own = cos.gather(1, lab[:, None]).squeeze(1)
        limit = 1 - 1e-7 if cos.dtype == torch.float64 else 1 - 1e-6
        return torch.arccos(own.clamp(-limit, limit)).mean()

    def predict(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Index of the nearest class vector, ``(batch,)`` int64."""
        return self.cosines(embeddings).argmax(dim=1)
