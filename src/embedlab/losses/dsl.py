"""Dynamic Subspace Learners: a base loss per subspace of the embedding, K grown by clustering."""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import torch
import torch.nn.functional as F

from embedlab._validation import check_int
from embedlab.losses._base import MetricLoss, NoPairsWarning, check_label_batch, zero_loss
from embedlab.losses._kmeans import spherical_kmeans
from embedlab.losses._registry import make_loss, register_loss

__all__ = ["DSLLoss"]


@register_loss("dsl")
class DSLLoss(MetricLoss):
    """K subspace learners on one embedding; K grows during training when the loss plateaus.

    The embedding ``(batch, dim)`` is split into ``K`` contiguous subspaces (learners). The
    data are clustered into ``K`` groups by spherical k-means on the full embeddings (a
    memory bank of the last ``memory`` training embeddings); each sample is routed to its
    nearest centroid, and learner ``k`` applies the base loss to the L2-normalised subspace
    ``k`` of the samples routed to it (divide and conquer, Sanakoyeu et al. 2019). The loss is
    the per-learner losses weighted by their share of the batch. Training starts with one
    learner. Every ``grow_every`` training steps the mean loss of the window is compared with
    the previous window: if it improved by less than ``plateau_tol`` (relative), a learner is
    added (up to ``k_max``) and the bank re-clustered into ``K + 1`` groups; otherwise (for
    ``K > 1``) the bank is re-clustered with the same ``K``. Clustering is seeded
    (``seed``), so the same data and seed give the same growth. Retrieval uses the whole
    embedding (all learners concatenated). K, the centroids and the bank are buffers: they
    are saved with the trainer's checkpoint.

    Adiga Vasudeva, Dolz, Lombaert, "Attention-based Dynamic Subspace Learners for Medical
    Image Analysis", IEEE JBHI 2022 (MIDL 2022). Their attention module is a spatial
    attention over CNN feature maps inside the network, so it lives in the encoder
    (``make_encoder("cnn_attn", ...)``, ``--model cnn_attn``), not in this loss.

    Args:
        base: the per-learner loss, a spec string (a ``"labels"`` loss that needs no ``dim``).
        k_max: most learners (``<= dim``).
        grow_every: training steps per plateau check.
        plateau_tol: grow when ``(prev - cur) < plateau_tol * |prev|`` for window means.
        memory: embeddings kept for clustering (``>= k_max``).
        seed: k-means seeding.
        dim: the embedding dim (given by :func:`make_loss`).
        n_classes: passed on to the base loss.

    Shapes:
        ``forward(embeddings (batch, dim), labels (batch,)) -> ()``.

    Example:
        >>> import torch
        >>> loss_fn = DSLLoss("triplet", k_max=3, dim=32)
        >>> float(loss_fn(torch.randn(16, 32), torch.arange(16) % 4)) >= 0
        True
    """

    k: torch.Tensor
    centroids: torch.Tensor
    bank: torch.Tensor
    bank_size: torch.Tensor
    steps: torch.Tensor

    def __init__(
        self,
        base: str = "triplet",
        *,
        k_max: int = 4,
        grow_every: int = 25,
        plateau_tol: float = 0.05,
        memory: int = 2048,
        seed: int = 0,
        dim: int | None = None,
        n_classes: int | None = None,
    ) -> None:
        super().__init__()
        if dim is None:
            raise ValueError("dim must be given (the embedding size to split into subspaces)")
        self.dim = check_int("dim", dim, min_value=1)
        self.k_max = check_int("k_max", k_max, min_value=1)
        if self.k_max > self.dim:
            raise ValueError(f"k_max must be <= dim={self.dim}, got {k_max}")
        self.grow_every = check_int("grow_every", grow_every, min_value=1)
        if isinstance(plateau_tol, bool) or not isinstance(plateau_tol, (int, float)):
            raise TypeError(f"plateau_tol must be a number, got {plateau_tol!r}")
        if math.isnan(plateau_tol):
            raise ValueError(f"plateau_tol must not be NaN, got {plateau_tol}")
        self.plateau_tol = float(plateau_tol)
        self.memory = check_int("memory", memory, min_value=self.k_max)
        self.seed = check_int("seed", seed, min_value=0)
        if not isinstance(base, str):
            raise TypeError(f"base must be a loss spec string, got {type(base).__name__}")
        self.base_spec = base
        self.base = make_loss(base, n_classes=2 if n_classes is None else n_classes)
        if self.base.input_kind != "labels":
            raise ValueError(
                f"base must be a loss on (embeddings, labels), got {base!r} "
                f"(input_kind {self.base.input_kind!r})"
            )
        self.register_buffer("k", torch.ones((), dtype=torch.long))
        self.register_buffer("centroids", torch.zeros(self.k_max, self.dim))
        self.register_buffer("bank", torch.zeros(self.memory, self.dim))
        self.register_buffer("bank_size", torch.zeros((), dtype=torch.long))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self._window: list[float] = []
        self._prev: float | None = None
        #: ``(step, K)`` after every growth, for inspection
        self.growth_log: list[tuple[int, int]] = []

    @property
    def n_learners(self) -> int:
        """The current number of learners ``K``."""
        return int(self.k)

    def subspaces(self) -> list[slice]:
        """The ``K`` contiguous slices of the embedding, one per learner."""
        k, edges = self.n_learners, []
        for i in range(k + 1):
            edges.append(i * self.dim // k)
        return [slice(a, b) for a, b in itertools.pairwise(edges)]

    def assign(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``(batch,)`` learner of each embedding: its nearest centroid (cosine)."""
        if self.n_learners == 1:
            return torch.zeros(embeddings.shape[0], dtype=torch.long, device=embeddings.device)
        z = F.normalize(embeddings.detach(), dim=1)
        cents = self.centroids[: self.n_learners].to(z.dtype)
        return (z @ cents.T).argmax(1)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x, y, ok = check_label_batch(embeddings, labels)
        if x.shape[1] != self.dim:
            raise ValueError(f"embeddings must have dim={self.dim} columns, got {x.shape[1]}")
        if not ok:
            return zero_loss(x)
        if self.training:
            self._remember(x)
        route = self.assign(x)
        total = zero_loss(x)
        for k, part in enumerate(self.subspaces()):
            rows = torch.nonzero(route == k).flatten()
            if rows.numel() < 2:
                continue
            sub = F.normalize(x[rows, part], dim=1)
            with warnings.catch_warnings():
                # a learner's share of a batch may lack pairs: it then adds zero
                warnings.simplefilter("ignore", NoPairsWarning)
                term: torch.Tensor = self.base(sub, y[rows])
            total = total + term * (rows.numel() / x.shape[0])
        if self.training:
            self._after_step(float(total.detach()))
        return total

    # --- growth ---------------------------------------------------------------
    def _remember(self, x: torch.Tensor) -> None:
        z = F.normalize(x.detach(), dim=1).to(self.bank.dtype)[-self.memory :]
        n, size = z.shape[0], int(self.bank_size)
        # FIFO: shift the bank left when full
        keep = min(size, self.memory - n)
        if keep < size:
            self.bank[:keep] = self.bank[size - keep : size].clone()
        self.bank[keep : keep + n] = z
        self.bank_size.fill_(keep + n)

    def _after_step(self, value: float) -> None:
        self.steps += 1
        self._window.append(value)
        if int(self.steps) % self.grow_every:
            return
        cur = sum(self._window) / len(self._window)
        self._window = []
        k = self.n_learners
        plateau = self._prev is not None and (self._prev - cur) < self.plateau_tol * abs(self._prev)
        if plateau and k < self.k_max and int(self.bank_size) >= k + 1:
            self.k.fill_(k + 1)
            self.growth_log.append((int(self.steps), k + 1))
            self._prev = None  # compare the next two windows of the new K
            self._recluster()
            return
        self._prev = cur
        if k > 1:
            self._recluster()

    def _recluster(self) -> None:
        k = self.n_learners
        bank = self.bank[: int(self.bank_size)]
        seed = self.seed * 1_000_003 + int(self.steps)
        self.centroids[:k] = spherical_kmeans(bank, k, seed=seed).to(self.centroids.dtype)

    def bench_params(self) -> dict[str, Any]:
        """What training grew, for benchmark records: ``K`` and the growth steps of the
        current state (a trainer that restores an earlier epoch restores its ``K``), and the
        largest ``K`` reached in the whole run."""
        return {
            "n_learners": self.n_learners,
            "growth_steps": [step for step, _ in self.growth_log if step <= int(self.steps)],
            "dsl_steps": int(self.steps),
            "max_learners_reached": max([1, *(k for _, k in self.growth_log)]),
        }

    def hyper_parameters(self) -> dict[str, Any]:
        """The DSL settings and the base loss's spec (for benchmark records)."""
        return {
            "base": self.base_spec,
            "k_max": self.k_max,
            "grow_every": self.grow_every,
            "plateau_tol": self.plateau_tol,
            "memory": self.memory,
            "seed": self.seed,
        }
