"""Training and scoring bundle-completion models: method specs, the loop, Recall / NDCG@k."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from embedlab._registry import parse_spec
from embedlab._validation import check_int, check_keywords, check_positive_float
from embedlab.bundle.clhe import CLHE
from embedlab.bundle.losses import pad_bundles

__all__ = [
    "BUNDLE_METHODS",
    "BundleTrainLog",
    "completion_metrics",
    "evaluate_completion",
    "make_bundle_model",
    "train_bundle_model",
]

#: method name -> CLHE settings; ``clhe_nocl`` is CLHE with both contrastive weights 0 and
#: ``mean`` averages feature tokens and given items (no attention, no transformer).
BUNDLE_METHODS: dict[str, dict[str, Any]] = {
    "clhe": {},
    "clhe_nocl": {"item_cl_weight": 0.0, "bundle_cl_weight": 0.0},
    "mean": {"fusion": "mean", "pooling": "mean", "item_cl_weight": 0.0, "bundle_cl_weight": 0.0},
}

_OPTIONS = (
    "dim",
    "hidden",
    "n_layers",
    "fusion",
    "pooling",
    "item_cl_weight",
    "bundle_cl_weight",
    "item_temperature",
    "bundle_temperature",
    "token_dropout",
    "item_dropout",
)


def make_bundle_model(spec: str, item_features: np.ndarray | torch.Tensor) -> CLHE:
    """A model from ``"clhe"``, ``"clhe_nocl"``, ``"mean"`` or e.g. ``"clhe(dim=32)"``.

    Example:
        >>> make_bundle_model("clhe_nocl", np.eye(4, dtype=np.float32)).hparams["item_cl_weight"]
        0.0
    """
    name, options = parse_spec(spec)
    if name not in BUNDLE_METHODS:
        raise ValueError(f"method must be one of {', '.join(sorted(BUNDLE_METHODS))}; got {name!r}")
    check_keywords(f"method {name!r}", options, _OPTIONS)
    feats = torch.as_tensor(np.asarray(item_features, dtype=np.float32))
    return CLHE(feats, **{**BUNDLE_METHODS[name], **options})


@dataclass
class BundleTrainLog:
    """Mean losses per epoch and the training time."""

    loss: list[float] = field(default_factory=list)
    main: list[float] = field(default_factory=list)
    item_cl: list[float] = field(default_factory=list)
    bundle_cl: list[float] = field(default_factory=list)
    train_s: float = 0.0


def train_bundle_model(
    model: CLHE,
    bundles: Sequence[np.ndarray],
    *,
    epochs: int = 20,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    seed: int = 0,
) -> BundleTrainLog:
    """Train ``model`` on ``bundles``: each epoch every bundle is split anew into a random
    given half and the rest to complete (see :func:`~embedlab.data.bundles.split_halves`).

    Args:
        model: the model (trained in place).
        bundles: training bundles, each of >= 2 distinct item ids.
        epochs: passes over ``bundles``.
        batch_size: bundles per step.
        lr: Adam learning rate.
        weight_decay: Adam L2 weight decay.
        seed: shuffling, halves, dropout and augmentations.
    """
    check_int("epochs", epochs, min_value=1)
    check_int("batch_size", batch_size, min_value=1)
    check_positive_float("lr", lr)
    check_positive_float("weight_decay", weight_decay, strict=False)
    check_int("seed", seed, min_value=0)
    if not bundles:
        raise ValueError("bundles must hold at least one bundle, got none")
    for i, b in enumerate(bundles):
        if len(b) < 2:
            raise ValueError(f"bundles[{i}] must hold at least 2 items, got {len(b)}")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    log = BundleTrainLog()
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        sums = dict.fromkeys(("loss", "main", "item_cl", "bundle_cl"), 0.0)
        steps = 0
        order = rng.permutation(len(bundles))
        for s in range(0, len(order), batch_size):
            given, rest = [], []
            for i in order[s : s + batch_size]:
                perm = rng.permutation(np.asarray(bundles[i]))
                k = max(1, len(perm) // 2)
                given.append(perm[:k])
                rest.append(perm[k:])
            out = model.losses(pad_bundles(given), pad_bundles(rest))
            opt.zero_grad()
            out["loss"].backward()  # type: ignore[no-untyped-call]
            opt.step()
            for key in sums:
                sums[key] += float(out[key].detach())
            steps += 1
        for key, total in sums.items():
            getattr(log, key).append(total / steps)
    log.train_s = time.perf_counter() - start
    model.eval()
    return log


def completion_metrics(
    scores: np.ndarray, given: Sequence[np.ndarray], rest: Sequence[np.ndarray], k: int = 20
) -> dict[str, float]:
    """Mean Recall@k and NDCG@k of ``scores`` for completing each bundle.

    Items in ``given[i]`` are excluded from row ``i``'s ranking. Recall@k is the share of
    ``rest[i]`` in the top ``k``; NDCG@k is DCG (gain 1 per hit, ``1 / log2(rank + 1)``)
    over the ideal DCG of ``min(k, len(rest[i]))`` hits.

    Args:
        scores: ``(n_bundles, n_items)`` scores.
        given: the given items of each bundle.
        rest: the items to complete (non-empty).
        k: cut-off.

    Example:
        >>> completion_metrics(np.array([[0.0, 3, 2, 1]]), [np.array([1])], [np.array([2])], k=1)
        {'recall@1': 1.0, 'ndcg@1': 1.0}
    """
    check_int("k", k, min_value=1)
    s = np.array(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != len(given) or len(given) != len(rest):
        raise ValueError(
            f"scores must be (n_bundles, n_items) with one row per bundle, got shape {s.shape} "
            f"for {len(given)} given and {len(rest)} rest"
        )
    k_eff = min(k, s.shape[1])
    discount = 1.0 / np.log2(np.arange(2, k_eff + 2))
    recalls, ndcgs = [], []
    for i, (g, r) in enumerate(zip(given, rest, strict=True)):
        if len(r) == 0:
            raise ValueError(f"rest[{i}] must hold at least one item to complete, got none")
        s[i, np.asarray(g, dtype=np.int64)] = -np.inf
        top = np.argsort(-s[i], kind="stable")[:k_eff]
        hits = np.isin(top, r)
        recalls.append(hits.sum() / len(r))
        ndcgs.append((hits * discount).sum() / discount[: min(k_eff, len(r))].sum())
    return {f"recall@{k}": float(np.mean(recalls)), f"ndcg@{k}": float(np.mean(ndcgs))}


def evaluate_completion(
    model: CLHE,
    given: Sequence[np.ndarray],
    rest: Sequence[np.ndarray],
    *,
    k: int = 20,
    batch_size: int = 512,
) -> dict[str, float]:
    """Recall@k and NDCG@k of ``model`` completing each ``given`` half with ``rest``."""
    check_int("batch_size", batch_size, min_value=1)
    model.eval()
    rows: list[np.ndarray] = []
    with torch.no_grad():
        items = model.decoder()
        for s in range(0, len(given), batch_size):
            bundle = model.encode_bundles(pad_bundles(list(given[s : s + batch_size])))
            rows.append((bundle @ items.T).numpy())
    return completion_metrics(np.concatenate(rows), given, rest, k=k)
