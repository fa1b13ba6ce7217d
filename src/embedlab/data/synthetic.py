"""Synthetic click logs with a planted factorisation-machine ground truth.

Ids follow a Zipf law per field (a few hot ids, a long tail, as in real
logs) and clicks are drawn from a known second-order FM, so the Bayes-optimal
AUC is known (``CTRDataset.oracle`` holds the true probabilities).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embedlab._validation import check_int, check_positive_float
from embedlab.data._dataset import CTRDataset
from embedlab.fields import Field

__all__ = ["DEFAULT_CARDINALITIES", "make_ctr"]

DEFAULT_CARDINALITIES: tuple[int, ...] = (5000, 2000, 1000, 500, 200, 100, 50, 20, 7, 3)


def _zipf_ids(rng: np.random.Generator, n: int, cardinality: int, exponent: float) -> np.ndarray:
    ranks = np.arange(1, cardinality + 1, dtype=np.float64)
    p = ranks**-exponent
    p /= p.sum()
    by_rank = rng.choice(cardinality, size=n, p=p)
    # hot ids are spread over the id range, not all at 0, 1, 2...
    return rng.permutation(cardinality)[by_rank].astype(np.int64)


def make_ctr(
    n_samples: int = 100_000,
    cardinalities: Sequence[int] = DEFAULT_CARDINALITIES,
    *,
    factor_dim: int = 8,
    zipf_exponent: float = 1.1,
    interaction_scale: float = 1.0,
    positive_rate: float = 0.3,
    seed: int = 0,
) -> CTRDataset:
    """Draw a click log from a planted FM: ``logit = w0 + sum_j w[j, x_j] + sum_{j<k} <v_j, v_k>``.

    Args:
        n_samples: number of impressions.
        cardinalities: ids per field; field ``j`` is named ``f{j}``.
        factor_dim: rank of the planted pairwise interactions.
        zipf_exponent: Zipf exponent of id popularity within each field.
        interaction_scale: strength of the pairwise term relative to the linear one.
        positive_rate: approximate fraction of clicks (sets the bias ``w0``).
        seed: seeds everything.

    Returns:
        A :class:`CTRDataset` with ``oracle`` set to the true click probabilities.

    Example:
        >>> ds = make_ctr(2000, (50, 20, 5), seed=0)
        >>> ds.ids.shape, ds.fields[0]
        ((2000, 3), Field(name='f0', cardinality=50))
    """
    n = check_int("n_samples", n_samples, min_value=1)
    k = check_int("factor_dim", factor_dim, min_value=1)
    check_positive_float("zipf_exponent", zipf_exponent)
    check_positive_float("interaction_scale", interaction_scale, strict=False)
    if not 0.0 < positive_rate < 1.0:
        raise ValueError(f"positive_rate must be in (0, 1), got {positive_rate}")
    cards = [check_int(f"cardinalities[{j}]", c, min_value=1) for j, c in enumerate(cardinalities)]
    if not cards:
        raise ValueError("cardinalities must not be empty")
    rng = np.random.default_rng(seed)
    fields = tuple(Field(f"f{j}", c) for j, c in enumerate(cards))
    ids = np.stack([_zipf_ids(rng, n, c, zipf_exponent) for c in cards], axis=1)

    n_f = len(cards)
    linear = [rng.normal(0.0, 0.5, size=c) for c in cards]
    # pairwise term variance ~ interaction_scale^2 regardless of the number of fields
    pair_std = interaction_scale / np.sqrt(k * max(1, n_f * (n_f - 1) / 2)) ** 0.5
    factors = [rng.normal(0.0, pair_std, size=(c, k)) for c in cards]

    logit = np.zeros(n)
    v_sum = np.zeros((n, k))
    v_sq = np.zeros(n)
    for j in range(n_f):
        logit += linear[j][ids[:, j]]
        v = factors[j][ids[:, j]]
        v_sum += v
        v_sq += (v * v).sum(axis=1)
    logit += 0.5 * ((v_sum * v_sum).sum(axis=1) - v_sq)
    # bias so that the mean click rate is close to ``positive_rate``
    logit -= np.quantile(logit, 1.0 - positive_rate)
    prob = 1.0 / (1.0 + np.exp(-logit))
    labels = (rng.random(n) < prob).astype(np.float32)
    return CTRDataset(
        ids=ids, labels=labels, fields=fields, name="synthetic", oracle=prob.astype(np.float32)
    )
