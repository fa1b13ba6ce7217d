"""Class-balanced batches: P classes x K samples, the batch shape miners need."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from embedlab._validation import check_int, check_optional_int

__all__ = ["ClassBalancedSampler"]


class ClassBalancedSampler(Sampler[list[int]]):
    """Yields index batches of ``p`` distinct classes x ``k`` samples each (``p * k`` indices).

    Within a class, samples are drawn without replacement when the class has at
    least ``k`` of them and with replacement otherwise. Use it as a DataLoader's
    ``batch_sampler``. The batch order is random and seeded: iterating twice
    continues the same random stream, so two samplers with one seed agree.

    Args:
        labels: class ids ``(n,)`` of the data set (numpy array, tensor or list).
        p: classes per batch, ``>= 1`` and at most the number of classes.
        k: samples per class, ``>= 1`` (``>= 2`` gives positives).
        seed: seeds the draws.
        n_batches: batches per epoch; default ``len(labels) // (p * k)`` (at least 1).

    Hermans et al., "In Defense of the Triplet Loss for Person Re-Identification", 2017.

    Example:
        >>> sampler = ClassBalancedSampler([0, 0, 1, 1, 2, 2, 2], p=2, k=2, seed=0)
        >>> batch = next(iter(sampler))
        >>> len(batch)
        4
    """

    def __init__(
        self, labels: Any, p: int, k: int, *, seed: int = 0, n_batches: int | None = None
    ) -> None:
        lab = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
        if lab.ndim != 1:
            raise ValueError(f"labels must have shape (n,), got {lab.shape}")
        self.p = check_int("p", p, min_value=1)
        self.k = check_int("k", k, min_value=1)
        self.seed = check_int("seed", seed)
        classes, inverse = np.unique(lab, return_inverse=True)
        if self.p > len(classes):
            raise ValueError(f"p must be <= the number of classes ({len(classes)}), got {p}")
        order = np.argsort(inverse, kind="stable")
        counts = np.bincount(inverse, minlength=len(classes))
        self._members = np.split(order, np.cumsum(counts)[:-1])
        default = max(1, len(lab) // (self.p * self.k))
        n = check_optional_int("n_batches", n_batches, min_value=1)
        self.n_batches = default if n is None else n
        self._rng = np.random.default_rng(self.seed)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = self._rng
        for _ in range(self.n_batches):
            chosen = rng.choice(len(self._members), size=self.p, replace=False)
            batch: list[int] = []
            for c in chosen:
                members = self._members[int(c)]
                replace = len(members) < self.k
                batch.extend(int(i) for i in rng.choice(members, size=self.k, replace=replace))
            yield batch
