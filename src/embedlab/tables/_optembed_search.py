"""OptEmbed's building blocks: the long-tail step with its straight-through gradient
and the evolutionary search of per-field dimensions under a byte budget (see
:mod:`embedlab.tables.optembed`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["DimSearchResult", "evolutionary_dim_search", "long_tail_step"]


class _LongTailStep(torch.autograd.Function):
    """Unit step forward; the long-tailed derivative estimator backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        a = x.abs()
        slope = torch.where(a <= 0.4, 2.0 - 4.0 * a, torch.where(a <= 1.0, 0.4, 0.0))
        return grad * slope


def long_tail_step(x: torch.Tensor) -> torch.Tensor:
    """``1[x > 0]`` with the derivative ``2 - 4|x|`` for ``|x| <= 0.4``, ``0.4`` for
    ``0.4 < |x| <= 1`` and 0 beyond (the estimator OptEmbed takes from Liu et al.'s
    Dynamic Sparse Training, ICLR 2020)."""
    out: torch.Tensor = _LongTailStep.apply(x)  # type: ignore[no-untyped-call]
    return out


@dataclass(frozen=True)
class DimSearchResult:
    """What :func:`evolutionary_dim_search` found.

    Attributes:
        dims: the best per-field dims.
        score: its score.
        evaluations: how many distinct candidates were scored.
        generations: how many generations followed the initial population.
    """

    dims: list[int]
    score: float
    evaluations: int
    generations: int


def _repair(
    d: np.ndarray, unit_bytes: np.ndarray, capacity: int, rng: np.random.Generator
) -> np.ndarray:
    """Lower random dims (a field drawn in proportion to its bytes per dim) until
    ``unit_bytes @ d <= capacity``."""
    d = d.copy()
    over = int(unit_bytes @ d) - capacity
    while over > 0:
        weights = np.where(d > 1, unit_bytes, 0).astype(np.float64)
        f = rng.choice(len(d), p=weights / weights.sum())
        d[f] -= 1
        over -= int(unit_bytes[f])
    return d


def evolutionary_dim_search(
    score: Callable[[np.ndarray], float],
    unit_bytes: Sequence[int],
    capacity: int,
    dim: int,
    *,
    seed: int = 0,
    population: int = 20,
    n_parents: int = 10,
    mutation_prob: float = 0.1,
    max_evals: int = 100,
    max_generations: int = 30,
) -> DimSearchResult:
    """Search per-field dims in ``1..dim`` maximising ``score`` within a byte capacity.

    A candidate ``d`` costs ``sum(unit_bytes[f] * d[f])`` bytes and must stay within
    ``capacity``; over-budget candidates are repaired by lowering random dims. The
    initial population is the largest uniform dim that fits plus random vectors; each
    generation keeps the ``n_parents`` best and breeds ``population`` children, half by
    mutation (each gene redrawn with ``mutation_prob``, at least one) and half by
    uniform crossover of two parents. Duplicates are never rescored; the search stops
    after ``max_evals`` scores, ``max_generations`` generations, or a generation with no
    new child.

    Args:
        score: ``dims (n_fields,) int64 -> float``, higher is better.
        unit_bytes: bytes one more dim costs per field ``(n_fields,)``.
        capacity: the most bytes the dims may cost.
        dim: the largest dim.
        seed: seeds every random draw; the same seed gives the same search.
        population: candidates per generation.
        n_parents: best candidates kept as parents.
        mutation_prob: probability of redrawing each gene of a mutated child.
        max_evals: the most candidates scored.
        max_generations: the most generations after the initial population.

    Raises:
        ValueError: not even dim 1 for every field fits ``capacity``.

    Example:
        >>> import numpy as np
        >>> res = evolutionary_dim_search(
        ...     lambda d: float(d[0] + 0.1 * d[1]), [4, 4], capacity=40, dim=8, seed=0
        ... )
        >>> res.dims, res.evaluations <= 100
        ([8, 2], True)
    """
    units = np.asarray(unit_bytes, dtype=np.int64)
    n = len(units)
    if int(units.sum()) > capacity:
        raise ValueError(
            f"capacity must fit dim 1 for every field ({int(units.sum())} bytes), got {capacity}"
        )
    rng = np.random.default_rng(seed)
    scores: dict[tuple[int, ...], float] = {}

    def add(d: np.ndarray) -> bool:
        key = tuple(int(x) for x in d)
        if key in scores or len(scores) >= max_evals:
            return False
        scores[key] = float(score(np.asarray(key, dtype=np.int64)))
        return True

    per_dim = int(units.sum())
    uniform = dim if per_dim == 0 else min(dim, capacity // per_dim)
    add(np.full(n, uniform, dtype=np.int64))
    for _ in range(10 * population):
        if len(scores) >= min(population, max_evals):
            break
        add(_repair(rng.integers(1, dim + 1, n), units, capacity, rng))

    generations = 0
    while len(scores) < max_evals and generations < max_generations:
        ranked = sorted(scores, key=lambda k: -scores[k])  # stable: earlier wins ties
        parents = [np.asarray(k, dtype=np.int64) for k in ranked[:n_parents]]
        new = 0
        for i in range(population):
            for _ in range(10):  # a few draws to find a child not yet scored
                if i % 2 == 0:
                    child = parents[rng.integers(len(parents))].copy()
                    redraw = rng.random(n) < mutation_prob
                    redraw[rng.integers(n)] = True
                    child[redraw] = rng.integers(1, dim + 1, int(redraw.sum()))
                else:
                    a, b = rng.choice(len(parents), size=2, replace=len(parents) < 2)
                    child = np.where(rng.random(n) < 0.5, parents[a], parents[b])
                if add(_repair(child, units, capacity, rng)):
                    new += 1
                    break
        generations += 1
        if new == 0:
            break
    best = max(scores, key=lambda k: scores[k])  # first maximum in insertion order
    return DimSearchResult(list(best), scores[best], len(scores), generations)
