"""Synthetic click logs with a planted factorisation-machine ground truth.

Ids follow a Zipf law per field (a few hot ids, a long tail, as in real
logs) and clicks are drawn from a known second-order FM, so the Bayes-optimal
AUC is known (``CTRDataset.oracle`` holds the true probabilities).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from embedlab._validation import check_int, check_positive_float
from embedlab.data._dataset import CTRDataset
from embedlab.fields import Field

__all__ = ["DEFAULT_CARDINALITIES", "PlantedCTR", "make_ctr"]

DEFAULT_CARDINALITIES: tuple[int, ...] = (5000, 2000, 1000, 500, 200, 100, 50, 20, 7, 3)


def _zipf_probabilities(cardinality: int, exponent: float) -> np.ndarray:
    """``(cardinality,)`` float64: the probability of popularity rank ``k`` is ~ ``k^-exponent``."""
    ranks = np.arange(1, cardinality + 1, dtype=np.float64)
    p = ranks**-exponent
    p /= p.sum()
    return p


def _zipf_ids(rng: np.random.Generator, n: int, cardinality: int, exponent: float) -> np.ndarray:
    by_rank = rng.choice(cardinality, size=n, p=_zipf_probabilities(cardinality, exponent))
    # hot ids are spread over the id range, not all at 0, 1, 2...
    return rng.permutation(cardinality)[by_rank].astype(np.int64)


def _fm_parameters(
    rng: np.random.Generator,
    cards: Sequence[int],
    factor_dim: int,
    interaction_scale: float,
    dtype: type[np.floating[Any]] = np.float64,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Planted linear weights ``(c,)`` and factors ``(c, factor_dim)`` of each field."""
    n_f = len(cards)
    # pairwise term variance ~ interaction_scale^2 regardless of the number of fields
    pair_std = interaction_scale / np.sqrt(factor_dim * max(1, n_f * (n_f - 1) / 2)) ** 0.5
    linear: list[np.ndarray]
    factors: list[np.ndarray]
    if dtype == np.float64:  # make_ctr's draws, unchanged
        linear = [rng.normal(0.0, 0.5, size=c) for c in cards]
        factors = [rng.normal(0.0, pair_std, size=(c, factor_dim)) for c in cards]
    else:  # float32 draws: half the memory for planted tables of 10^7 ids
        linear = [rng.standard_normal(c, dtype=np.float32) * np.float32(0.5) for c in cards]
        factors = [
            rng.standard_normal((c, factor_dim), dtype=np.float32) * np.float32(pair_std)
            for c in cards
        ]
    return linear, factors


def _fm_logits(ids: np.ndarray, linear: list[np.ndarray], factors: list[np.ndarray]) -> np.ndarray:
    """``(n,)`` float64 ``sum_j w[j, x_j] + sum_{j<k} <v_j, v_k>`` of ids ``(n, n_fields)``."""
    n = ids.shape[0]
    logit = np.zeros(n)
    v_sum = np.zeros((n, factors[0].shape[1]))
    v_sq = np.zeros(n)
    for j in range(ids.shape[1]):
        logit += linear[j][ids[:, j]]
        v = factors[j][ids[:, j]]
        v_sum += v
        v_sq += (v * v).sum(axis=1)
    out: np.ndarray = logit + 0.5 * ((v_sum * v_sum).sum(axis=1) - v_sq)
    return out


def _check_planted(
    cardinalities: Sequence[int],
    factor_dim: int,
    zipf_exponent: float,
    interaction_scale: float,
    positive_rate: float,
) -> tuple[list[int], int]:
    k = check_int("factor_dim", factor_dim, min_value=1)
    check_positive_float("zipf_exponent", zipf_exponent)
    check_positive_float("interaction_scale", interaction_scale, strict=False)
    if not 0.0 < positive_rate < 1.0:
        raise ValueError(f"positive_rate must be in (0, 1), got {positive_rate}")
    cards = [check_int(f"cardinalities[{j}]", c, min_value=1) for j, c in enumerate(cardinalities)]
    if not cards:
        raise ValueError("cardinalities must not be empty")
    return cards, k


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
    cards, k = _check_planted(
        cardinalities, factor_dim, zipf_exponent, interaction_scale, positive_rate
    )
    rng = np.random.default_rng(seed)
    fields = tuple(Field(f"f{j}", c) for j, c in enumerate(cards))
    ids = np.stack([_zipf_ids(rng, n, c, zipf_exponent) for c in cards], axis=1)

    linear, factors = _fm_parameters(rng, cards, k, interaction_scale)
    logit = _fm_logits(ids, linear, factors)
    # bias so that the mean click rate is close to ``positive_rate``
    logit -= np.quantile(logit, 1.0 - positive_rate)
    prob = 1.0 / (1.0 + np.exp(-logit))
    labels = (rng.random(n) < prob).astype(np.float32)
    return CTRDataset(
        ids=ids, labels=labels, fields=fields, name="synthetic", oracle=prob.astype(np.float32)
    )


class PlantedCTR:
    """The planted-FM click model of :func:`make_ctr`, drawn in chunks of any size.

    The model (Zipf popularity and id permutation per field, float32 linear weights
    and factors) is drawn once; the bias is set on a pilot sample of ``pilot_rows``
    rows so the click rate is close to ``positive_rate``. Memory holds the model
    (about ``(factor_dim + 3) * 4`` bytes plus 8 per id) and one chunk, not the log,
    so logs of 10^8 rows over 10^7 ids can be written in a stream.

    Args:
        cardinalities, factor_dim, zipf_exponent, interaction_scale, positive_rate:
            as in :func:`make_ctr`.
        seed: seeds the model (chunks take their own generator).
        pilot_rows: rows drawn to set the bias.

    Example:
        >>> model = PlantedCTR((1000, 50), seed=0)
        >>> ids, prob, labels = model.sample(4, np.random.default_rng(1))
        >>> ids.shape, prob.shape, labels.dtype
        ((4, 2), (4,), dtype('float32'))
    """

    def __init__(
        self,
        cardinalities: Sequence[int] = DEFAULT_CARDINALITIES,
        *,
        factor_dim: int = 8,
        zipf_exponent: float = 1.1,
        interaction_scale: float = 1.0,
        positive_rate: float = 0.3,
        seed: int = 0,
        pilot_rows: int = 200_000,
    ) -> None:
        cards, k = _check_planted(
            cardinalities, factor_dim, zipf_exponent, interaction_scale, positive_rate
        )
        self.cardinalities = tuple(cards)
        rng = np.random.default_rng(seed)
        self._cdf = [np.cumsum(_zipf_probabilities(c, zipf_exponent)) for c in cards]
        self._perm = [rng.permutation(c).astype(np.int32 if c < 2**31 else np.int64) for c in cards]
        self._linear, self._factors = _fm_parameters(rng, cards, k, interaction_scale, np.float32)
        self._bias = 0.0
        pilot = self.logits(self.sample_ids(check_int("pilot_rows", pilot_rows, min_value=1), rng))
        self._bias = float(np.quantile(pilot, 1.0 - positive_rate))

    def sample_ids(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, n_fields)`` int64 ids, Zipf-distributed per field."""
        ids = np.empty((n, len(self._cdf)), dtype=np.int64)
        for j, (cdf, perm) in enumerate(zip(self._cdf, self._perm, strict=True)):
            by_rank = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)
            ids[:, j] = perm[by_rank]
        return ids

    def logits(self, ids: np.ndarray) -> np.ndarray:
        """``(n,)`` float64 true logits of ids ``(n, n_fields)`` (bias included)."""
        return _fm_logits(ids, self._linear, self._factors) - self._bias

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ids (n, n_fields) int64, prob (n,) float32, labels (n,) float32)``."""
        ids = self.sample_ids(check_int("n", n, min_value=1), rng)
        prob = 1.0 / (1.0 + np.exp(-self.logits(ids)))
        labels = (rng.random(n) < prob).astype(np.float32)
        return ids, prob.astype(np.float32), labels

    def iter_chunks(
        self, n_samples: int, *, chunk_rows: int = 100_000, seed: int = 0
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``n_samples`` rows as :meth:`sample` chunks of up to ``chunk_rows`` rows."""
        n_samples = check_int("n_samples", n_samples, min_value=1)
        chunk_rows = check_int("chunk_rows", chunk_rows, min_value=1)
        rng = np.random.default_rng(seed)
        for start in range(0, n_samples, chunk_rows):
            yield self.sample(min(chunk_rows, n_samples - start), rng)
