"""Bundle data for bundle completion (CLHE, Ma et al. 2024): item features and item sets.

A bundle is a set of item ids; a model sees half of it and ranks every other item to
complete it. :func:`load_bundles` is the one entry point for specs:

- ``movielens-bundles:DIR``: co-rated sessions of MovieLens with MiniLM item features
  (:func:`~embedlab.data.movielens_bundles.load_movielens_bundles`).
- ``synthetic-bundles`` or ``synthetic-bundles(n_items=..., ...)``: planted bundles
  (:func:`make_planted_bundles`), for tests and quick runs.

Every source splits its bundles into train / valid / test with :func:`split_bundles`
(seeded, disjoint); :func:`split_halves` picks the given half of each evaluated bundle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedlab._registry import Registry, parse_spec
from embedlab._validation import check_fraction, check_int

__all__ = [
    "BUNDLE_SOURCES",
    "BundleData",
    "check_bundles",
    "load_bundles",
    "make_planted_bundles",
    "split_bundles",
    "split_halves",
]


def check_bundles(name: str, bundles: Sequence[Any], n_items: int) -> list[np.ndarray]:
    """``bundles`` as int64 arrays: each holds >= 2 distinct item ids in ``[0, n_items)``.

    Raises:
        ValueError: a bundle of fewer than two items, a repeated item or an id out of range
            (the message names ``name[i]``).
    """
    out: list[np.ndarray] = []
    for i, b in enumerate(bundles):
        arr = np.asarray(b)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"{name}[{i}] must be a 1-d sequence of item ids, got {b!r}")
        arr = arr.astype(np.int64)
        if arr.size < 2:
            raise ValueError(
                f"{name}[{i}] must hold at least 2 items (half is given, half completed), "
                f"got {arr.size}"
            )
        if np.unique(arr).size != arr.size:
            raise ValueError(f"{name}[{i}] must not repeat an item, got {arr.tolist()}")
        if arr.min() < 0 or arr.max() >= n_items:
            raise ValueError(f"{name}[{i}] item ids must be in [0, {n_items}), got {arr.tolist()}")
        out.append(arr)
    return out


@dataclass
class BundleData:
    """Item features and train / valid / test bundles over the same items.

    Args:
        name: dataset name used in benchmark records.
        item_features: ``(n_items, d)`` float32 content features (e.g. MiniLM text vectors).
        train: training bundles, each an int64 array of >= 2 distinct item ids.
        valid: validation bundles.
        test: test bundles.
        item_names: one label per item (titles), or empty.

    Example:
        >>> import numpy as np
        >>> d = BundleData("toy", np.eye(4, dtype=np.float32), [[0, 1]], [], [[2, 3]])
        >>> d.n_items, len(d.train)
        (4, 1)
    """

    name: str
    item_features: np.ndarray
    train: list[np.ndarray]
    valid: list[np.ndarray]
    test: list[np.ndarray]
    item_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        feats = np.asarray(self.item_features)
        if feats.ndim != 2 or feats.shape[0] == 0 or feats.shape[1] == 0:
            raise ValueError(
                f"item_features must be a non-empty (n_items, d) matrix, got shape {feats.shape}"
            )
        if not np.isfinite(feats).all():
            raise ValueError("item_features must be finite, got NaN or infinity")
        self.item_features = np.ascontiguousarray(feats, dtype=np.float32)
        n = self.n_items
        self.train = check_bundles("train", self.train, n)
        self.valid = check_bundles("valid", self.valid, n)
        self.test = check_bundles("test", self.test, n)
        if not self.train:
            raise ValueError("train must hold at least one bundle, got none")
        if self.item_names and len(self.item_names) != n:
            raise ValueError(
                f"item_names must have one name per item ({n}), got {len(self.item_names)}"
            )

    @property
    def n_items(self) -> int:
        """Number of items (rows of ``item_features``)."""
        return int(self.item_features.shape[0])


def split_bundles(
    bundles: Sequence[np.ndarray], *, seed: int = 0, valid: float = 0.1, test: float = 0.1
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Shuffle ``bundles`` with ``seed`` and cut them into train / valid / test.

    The three parts are disjoint (each bundle lands in exactly one) and the same seed
    gives the same parts. Valid and test get ``round(fraction * n)`` bundles each (at
    least one when ``n >= 3``).

    Example:
        >>> tr, va, te = split_bundles([[0, 1], [1, 2], [2, 3], [3, 4]], seed=0)
        >>> len(tr), len(va), len(te)
        (2, 1, 1)
    """
    check_int("seed", seed, min_value=0)
    check_fraction("valid", valid)
    check_fraction("test", test)
    if valid + test >= 1.0:
        raise ValueError(f"valid + test must be < 1, got {valid} + {test}")
    n = len(bundles)
    if n < 3:
        raise ValueError(f"bundles must hold at least 3 bundles to split, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_valid = max(1, round(valid * n))
    n_test = max(1, round(test * n))
    if n_valid + n_test >= n:
        raise ValueError(f"bundles must leave training bundles after the split, got n={n}")
    parts = (order[n_valid + n_test :], order[:n_valid], order[n_valid : n_valid + n_test])
    tr, va, te = ([np.asarray(bundles[i], dtype=np.int64) for i in sorted(p)] for p in parts)
    return tr, va, te


def split_halves(
    bundles: Sequence[np.ndarray], *, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The given half and the rest of each bundle (seeded).

    A bundle of ``n`` items gives ``n // 2`` items (at least one) and asks for the other
    ``n - n // 2``; which items are given is a seeded shuffle.

    Example:
        >>> given, rest = split_halves([np.array([0, 1, 2, 3, 4])], seed=0)
        >>> len(given[0]), len(rest[0])
        (2, 3)
    """
    check_int("seed", seed, min_value=0)
    rng = np.random.default_rng(seed)
    given: list[np.ndarray] = []
    rest: list[np.ndarray] = []
    for i, b in enumerate(bundles):
        if len(b) < 2:
            raise ValueError(f"bundles[{i}] must hold at least 2 items, got {len(b)}")
        perm = rng.permutation(np.asarray(b, dtype=np.int64))
        k = max(1, len(perm) // 2)
        given.append(np.sort(perm[:k]))
        rest.append(np.sort(perm[k:]))
    return given, rest


def make_planted_bundles(
    *,
    n_items: int = 60,
    n_groups: int = 6,
    n_bundles: int = 300,
    bundle_size: int = 4,
    dim: int = 16,
    noise: float = 1.0,
    seed: int = 0,
) -> BundleData:
    """Planted structure: items fall into ``n_groups`` groups and every bundle is drawn
    from one group; features are the group's centre plus Gaussian ``noise``.

    A model that learns the structure completes a bundle with its group's items; chance
    Recall@k is about ``k / n_items``.

    Example:
        >>> d = make_planted_bundles(n_items=20, n_groups=4, n_bundles=40, seed=0)
        >>> d.n_items, len(d.train) + len(d.valid) + len(d.test)
        (20, 40)
    """
    check_int("n_items", n_items, min_value=2)
    check_int("n_groups", n_groups, min_value=1)
    check_int("n_bundles", n_bundles, min_value=3)
    check_int("bundle_size", bundle_size, min_value=2)
    check_int("dim", dim, min_value=1)
    check_int("seed", seed, min_value=0)
    if n_items // n_groups < bundle_size:
        raise ValueError(
            f"bundle_size must be <= n_items // n_groups ({n_items // n_groups}), got {bundle_size}"
        )
    rng = np.random.default_rng(seed)
    group = np.arange(n_items) % n_groups
    centres = rng.normal(size=(n_groups, dim))
    feats = centres[group] + noise * rng.normal(size=(n_items, dim))
    members = [np.flatnonzero(group == g) for g in range(n_groups)]
    bundles = [
        rng.choice(members[rng.integers(n_groups)], size=bundle_size, replace=False)
        for _ in range(n_bundles)
    ]
    train, valid, test = split_bundles(bundles, seed=seed)
    return BundleData("synthetic-bundles", feats.astype(np.float32), train, valid, test)


@dataclass(frozen=True)
class BundleSource:
    """One registered source: ``load(path, *, seed, **options) -> BundleData``."""

    load: Callable[..., BundleData]
    needs_path: bool
    summary: str


BUNDLE_SOURCES: Registry[BundleSource] = Registry("bundle data source")


def _synthetic(path: Path | None, *, seed: int, **options: Any) -> BundleData:
    return make_planted_bundles(seed=seed, **options)


def _movielens(path: Path | None, *, seed: int, **options: Any) -> BundleData:
    from embedlab.data.movielens_bundles import load_movielens_bundles

    assert path is not None
    return load_movielens_bundles(path, seed=seed, **options)


BUNDLE_SOURCES.register("synthetic_bundles")(
    BundleSource(_synthetic, False, "planted bundles over item groups (generated)")
)
BUNDLE_SOURCES.register("movielens_bundles")(
    BundleSource(_movielens, True, "MovieLens co-rated sessions, MiniLM item text")
)


def load_bundles(spec: str, *, seed: int = 0, progress: bool = False) -> BundleData:
    """The bundle data named by ``spec`` (see the module docstring); ``seed`` splits it.

    ``-`` in the source name reads as ``_``; options go in parentheses before the path:
    ``movielens-bundles(max_size=10):DIR``.

    Example:
        >>> load_bundles("synthetic-bundles(n_items=24, n_groups=4)").n_items
        24
    """
    check_int("seed", seed, min_value=0)
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"data must look like name or name:PATH, got {spec!r}")
    head, sep, rest = spec.strip().partition(":")
    name, options = parse_spec(head.strip().replace("-", "_"))
    source = BUNDLE_SOURCES.get(name)  # unknown name: the error lists the valid ones
    path = Path(rest.strip()).expanduser() if sep and rest.strip() else None
    if sep and path is None:
        raise ValueError(f"data must give a path after ':', got {spec!r}")
    if source.needs_path and path is None:
        raise ValueError(f"data source {name!r} needs a path: {name}:DIR, got {spec!r}")
    if not source.needs_path and path is not None:
        raise ValueError(f"data source {name!r} takes no path, got {spec!r}")
    if source.needs_path:
        options["progress"] = progress
    return source.load(path, seed=seed, **options)
