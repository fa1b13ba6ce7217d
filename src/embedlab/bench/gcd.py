"""Generalized category discovery (GCD): find the known *and* the new classes in unlabelled data.

Protocol of Vaze et al. ("Generalized Category Discovery", CVPR 2022), as used by HypCD:
the known classes (e.g. 0-4) have half of their samples labelled; the unlabelled pool is
the other half of the known classes plus every sample of the new classes (5-9). One encoder
trains on all samples with a supervised contrastive term on the labelled ones and a
self-supervised one (two augmented views of each sample) on all of them:
``L = (1 - sup_weight) L_self + sup_weight L_sup``. The unlabelled pool is then embedded,
L2-normalised and clustered into as many clusters as there are classes, by k-means on the
pool (``assign="kmeans"``) or by semi-supervised k-means on all samples with the labelled
ones held in their class's cluster (``assign="ss-kmeans"``, Vaze et al.'s evaluation), and
scored by the standard GCD accuracy (:func:`gcd_accuracy`: one Hungarian matching on all
of the pool, then the accuracy on its old-class and new-class parts).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlab import __version__
from embedlab._registry import parse_spec
from embedlab._validation import check_choice, check_fraction, check_int, check_positive_float
from embedlab.bench._record import BenchRecord, config_hash
from embedlab.data.labeled import LabeledData

__all__ = [
    "GCD_METRICS",
    "GCDSplit",
    "gcd_accuracy",
    "gcd_split",
    "load_gcd_data",
    "parse_known",
    "resolve_method",
    "run_gcd_bench",
]

GCD_METRICS = ("all_acc", "old_acc", "new_acc", "nmi")
#: the assignment steps: k-means on the pool, or semi-supervised k-means on everything
ASSIGNS = ("kmeans", "ss-kmeans")
#: method names that are not loss specs: ``raw`` clusters the inputs, ``euclidean`` is the
#: cosine-only contrastive baseline (``hypcd(alpha=0)``, the GCD baseline of Vaze et al.)
ALIASES = {"euclidean": "hypcd(alpha=0)"}
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_known(text: str | Sequence[int], *, option: str = "--known") -> tuple[int, ...]:
    """``"0-4"`` -> ``(0, 1, 2, 3, 4)``; also ``"0,2,5-7"`` or a sequence of ints.

    Raises:
        ValueError: a malformed spec, naming ``option`` (``--known``) and the bad text.
    """
    if not isinstance(text, str):
        values = [check_int(option, v, min_value=0) for v in text]
    else:
        values = []
        for part in text.split(","):
            m = _RANGE.match(part)
            if m is None:
                raise ValueError(
                    f"{option} must be class ids or ranges like '0-4' or '0,1,5-7', got {text!r}"
                )
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise ValueError(f"{option} range {part.strip()!r} is empty (end < start)")
            values.extend(range(lo, hi + 1))
    if not values:
        raise ValueError(f"{option} must name at least one class, got {text!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{option} names a class twice, got {text!r}")
    return tuple(sorted(values))


def load_gcd_data(spec: str) -> LabeledData:
    """``"synthetic"`` or ``"blobs"`` (10 Gaussian blobs, no files), ``"digits"``,
    ``"mnist:PATH"``."""
    from embedlab.bench.cluster import make_blobs
    from embedlab.bench.metric import load_labeled

    if spec in ("synthetic", "blobs"):
        return make_blobs(n_samples=1000, n_clusters=10, dim=16, seed=0)
    return load_labeled(spec)


@dataclass(frozen=True)
class GCDSplit:
    """A data set split for GCD.

    Attributes:
        data: all samples ``(n, ...)`` and their true classes ``(n,)``.
        known: the known (old) class ids.
        labelled: ``(n,)`` bool, True for the labelled samples (known classes only).
    """

    data: LabeledData
    known: tuple[int, ...]
    labelled: np.ndarray

    @property
    def unlabelled(self) -> np.ndarray:
        """Indices of the unlabelled pool (the samples clustered and scored)."""
        return np.flatnonzero(~self.labelled)

    @property
    def n_classes(self) -> int:
        """Number of distinct true classes in ``data`` (known and novel)."""
        return int(np.unique(self.data.y).size)

    def old_mask(self) -> np.ndarray:
        """``(n_unlabelled,)`` bool: which pool samples belong to a known class."""
        return np.isin(self.data.y[self.unlabelled], np.asarray(self.known))


def gcd_split(
    data: LabeledData,
    known: Sequence[int],
    *,
    labelled_fraction: float = 0.5,
    seed: int = 0,
) -> GCDSplit:
    """Label ``labelled_fraction`` of each known class's samples (drawn with ``seed``).

    Raises:
        ValueError: a known class absent from ``data``, or no new class left.
    """
    frac = check_fraction("labelled_fraction", labelled_fraction)
    classes = set(np.unique(data.y).tolist())
    missing = sorted(set(known) - classes)
    if missing:
        raise ValueError(
            f"--known names classes {missing} that {data.name!r} does not have "
            f"(its classes: {sorted(classes)})"
        )
    if not classes - set(known):
        raise ValueError(f"--known must leave at least one new class, got all of {sorted(known)}")
    rng = np.random.default_rng(seed)
    labelled = np.zeros(len(data), dtype=bool)
    for c in sorted(known):
        idx = np.flatnonzero(data.y == c)
        labelled[rng.permutation(idx)[: int(frac * idx.size)]] = True
    return GCDSplit(data=data, known=tuple(sorted(known)), labelled=labelled)


def gcd_accuracy(y_true: Any, y_pred: Any, old_mask: Any) -> dict[str, float]:
    """The GCD accuracy: one Hungarian matching of clusters to classes on all samples, then
    the share right under that matching on all, on the old-class and on the new-class samples.

    Args:
        y_true: ``(n,)`` true classes; y_pred: ``(n,)`` cluster ids;
        old_mask: ``(n,)`` bool, True for samples of a known class.

    Returns:
        ``{"all_acc", "old_acc", "new_acc"}`` (a part with no sample scores NaN).

    Example:
        >>> gcd_accuracy([0, 0, 1, 1], [1, 1, 0, 1], [True, True, False, False])
        {'all_acc': 0.75, 'old_acc': 1.0, 'new_acc': 0.5}
    """
    from scipy.optimize import linear_sum_assignment

    true = np.asarray(y_true).ravel()
    pred = np.asarray(y_pred).ravel()
    old = np.asarray(old_mask, dtype=bool).ravel()
    if not true.shape == pred.shape == old.shape:
        raise ValueError(
            f"y_true, y_pred and old_mask must have one length, got "
            f"{true.shape[0]}, {pred.shape[0]}, {old.shape[0]}"
        )
    classes, t = np.unique(true, return_inverse=True)
    clusters, p = np.unique(pred, return_inverse=True)
    table = np.zeros((clusters.size, classes.size), dtype=np.int64)
    np.add.at(table, (p, t), 1)
    rows, cols = linear_sum_assignment(table, maximize=True)
    mapped = np.full(clusters.size, -1)
    mapped[rows] = cols
    right = mapped[p] == t

    def share(mask: np.ndarray) -> float:
        return float(right[mask].mean()) if mask.any() else float("nan")

    return {"all_acc": share(np.ones_like(old)), "old_acc": share(old), "new_acc": share(~old)}


def resolve_method(method: str) -> str:
    """The loss spec a GCD method trains with (``euclidean`` -> ``hypcd(alpha=0)``);
    ``raw`` stays ``raw``. Unknown loss names fail with the registry's list."""
    from embedlab.losses import LOSSES

    if method == "raw":
        return method
    spec = ALIASES.get(method, method)
    LOSSES.get(check_choice("loss", parse_spec(spec)[0], LOSSES.names()))
    return spec


def run_gcd_bench(
    data: LabeledData,
    *,
    known: str | Sequence[int] = "0-4",
    methods: Sequence[str] = ("euclidean", "hypcd"),
    seeds: Sequence[int] = (0,),
    labelled_fraction: float = 0.5,
    dim: int = 32,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    sup_weight: float = 0.5,
    model: str | None = None,
    assign: str = "kmeans",
    threads: int | None = None,
    progress: bool = False,
    on_record: Callable[[BenchRecord], None] | None = None,
) -> list[BenchRecord]:
    """Train one encoder per (method, seed) in the GCD setting; cluster and score the pool.

    Args:
        data: samples and their true classes.
        known: the known classes (``"0-4"``); each has ``labelled_fraction`` labelled.
        methods: ``raw`` (k-means on the inputs), ``euclidean`` (``hypcd(alpha=0)``) or any
            labels-kind loss spec (``hypcd``, ``hypcd(alpha=0.5, curvature=0.05)``, ``supcon``).
        seeds: one run per (method, seed); the seed draws the labelled samples, the
            initialisation, the batches and the augmentations.
        dim, epochs, batch_size, lr: encoder and Adam settings shared by every method.
        sup_weight: weight of the supervised term, in (0, 1) (HypCD: 0.5).
        model: ``"cnn"`` or ``"mlp"``; default ``cnn`` for square images, else ``mlp``.
        assign: ``"kmeans"`` (k-means on the pool) or ``"ss-kmeans"`` (semi-supervised
            k-means on all samples, labelled ones fixed; see
            :func:`embedlab.cluster.semi_supervised_kmeans`).
        threads: limit torch / BLAS / OpenMP pools to this many threads (``None``: as is).
        progress: print one line per epoch.
        on_record: called with each record as soon as it is measured.

    Returns:
        Records of suite ``"gcd"``: metrics ``all_acc`` (primary), ``old_acc``, ``new_acc``
        and ``nmi`` on the unlabelled pool; timing ``train_s``, ``eval_s``.
    """
    from embedlab.bench._threads import limit_threads
    from embedlab.training.encoders import ENCODERS

    known_ids = parse_known(known)
    if not methods:
        raise ValueError("methods must not be empty")
    if not seeds:
        raise ValueError("seeds must not be empty")
    specs = [resolve_method(m) for m in methods]
    for s in seeds:
        check_int("seed", s, min_value=0)
    check_int("dim", dim, min_value=1)
    check_int("epochs", epochs, min_value=1)
    check_int("batch_size", batch_size, min_value=4)
    check_positive_float("lr", lr)
    check_fraction("sup_weight", sup_weight)
    if threads is not None:
        check_int("threads", threads, min_value=1)
    shape = tuple(int(s) for s in data.x.shape[1:])
    if model is None:
        square = len(shape) == 3 and shape[1] == shape[2] and shape[1] % 4 == 0
        model = "cnn" if square and shape[1] >= 16 else "mlp"
    check_choice("model", model, ENCODERS)
    check_choice("assign", assign, ASSIGNS)
    gcd_split(data, known_ids, labelled_fraction=labelled_fraction)  # bad --known fails now
    settings: dict[str, Any] = {
        "known": list(known_ids),
        "labelled_fraction": labelled_fraction,
        "dim": dim,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "sup_weight": sup_weight,
        "model": model,
        "assign": assign,
        "n": len(data),
    }
    chash = config_hash(settings)
    run_kwargs: dict[str, Any] = {
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "sup_weight": sup_weight,
        "progress": progress,
    }  # fmt: skip
    records: list[BenchRecord] = []
    for seed in seeds:
        split = gcd_split(data, known_ids, labelled_fraction=labelled_fraction, seed=seed)
        pool = split.unlabelled
        base = {
            **settings,
            "n_labelled": int(split.labelled.sum()),
            "n_unlabelled": int(pool.size),
            "n_old_unlabelled": int(split.old_mask().sum()),
            "n_classes": split.n_classes,
            "protocol": (
                "gcd: k-means on the unlabelled pool, Hungarian on all"
                if assign == "kmeans"
                else "gcd: ss-k-means on all (labelled fixed), scored on the pool, Hungarian on all"
            ),
        }
        for method, spec in zip(methods, specs, strict=True):
            record = BenchRecord(
                suite="gcd",
                dataset=data.name,
                method=method,
                model=None if spec == "raw" else model,
                params={**base, "spec": spec},
                seed=seed,
                embedlab_version=__version__,
                config_hash=chash,
            )
            try:
                with limit_threads(threads):
                    _run_one(record, spec, split, model, dim, shape, run_kwargs)
            except (RuntimeError, ValueError, TypeError) as exc:
                record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
            records.append(record)
            if on_record is not None:
                on_record(record)
    return records


def _run_one(
    record: BenchRecord,
    spec: str,
    split: GCDSplit,
    model: str,
    dim: int,
    shape: tuple[int, ...],
    run_kwargs: dict[str, Any],
) -> None:
    """Fill ``record`` with one run's metrics, timing and loss settings."""
    from embedlab.bench._gcd_train import cluster_pool, train_gcd_encoder
    from embedlab.training.encoders import make_encoder
    from embedlab.training.metric import embed

    data, seed = split.data, record.seed
    timing: dict[str, float] = {"train_s": 0.0}
    if spec == "raw":
        emb = data.flat()
    else:
        encoder = make_encoder(model, dim, shape, seed=seed)
        loss, timing = train_gcd_encoder(encoder, spec, split, seed=seed, **run_kwargs)
        hyper = loss.hyper_parameters()
        record.params.update({f"loss_{k}": v for k, v in hyper.items() if k != "ramp"})
        emb = embed(encoder, data.x)
    start = time.perf_counter()
    record.metrics = cluster_pool(emb, split, seed=seed, assign=record.params["assign"])
    record.timing = {**timing, "eval_s": time.perf_counter() - start}
