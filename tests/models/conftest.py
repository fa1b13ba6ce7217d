"""Fixtures for the CTR-model tests: small fields and a seeded id sampler."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
import torch

from embedlab.tables import Field

IdSampler = Callable[..., torch.Tensor]


def _random_ids(fields: Sequence[Field], batch: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    cols = [torch.randint(0, f.cardinality, (batch,), generator=gen) for f in fields]
    return torch.stack(cols, dim=1)


@pytest.fixture
def fields() -> list[Field]:
    return [Field("a", 3000), Field("b", 1000), Field("c", 200), Field("d", 20)]


@pytest.fixture
def random_ids() -> IdSampler:
    """``random_ids(fields, batch, seed=0)`` -> int64 ``(batch, n_fields)`` ids in range."""
    return _random_ids
