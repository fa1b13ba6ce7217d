"""Held-out corpus vectors: which rows leave the corpus to serve as extra queries."""

from __future__ import annotations

import warnings

import numpy as np

from embedlab._validation import check_int

__all__ = ["holdout_split", "split_capped"]


def holdout_split(
    n: int, n_holdout: int, *, seed: int = 0, avoid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Choose ``n_holdout`` of ``n`` rows by ``seed``; return sorted (kept, held-out) rows.

    Rows where ``avoid`` is True are taken only when the others run out. At least one row
    stays in the corpus; a larger request is an error.
    """
    check_int("n_holdout", n_holdout, min_value=0)
    if n_holdout >= n:
        raise ValueError(f"n_holdout must be < the {n} corpus vectors, got {n_holdout}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    if avoid is not None:
        perm = np.concatenate([perm[~avoid[perm]], perm[avoid[perm]]])
    held = np.sort(perm[:n_holdout])
    mask = np.ones(n, dtype=bool)
    mask[held] = False
    return np.flatnonzero(mask), held


def split_capped(
    n: int, n_holdout: int, seed: int, avoid: np.ndarray | None, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`holdout_split` with ``n_holdout`` capped (with a warning) at half of ``n``."""
    if n_holdout > n // 2:
        warnings.warn(
            f"{name}: n_holdout={n_holdout} capped at half the {n} corpus vectors ({n // 2})",
            stacklevel=3,
        )
        n_holdout = n // 2
    return holdout_split(n, n_holdout, seed=seed, avoid=avoid)
