"""The metric-learning suite: one encoder trained with each loss, unseen-class retrieval.

Protocol of the metric-learning literature (Musgrave et al. 2020): train on classes 0-4,
evaluate leave-one-out retrieval and k-means clustering on the unseen classes 5-9. Every
loss trains the same encoder (same architecture, seed, epochs, batch, sampler, augmentation);
10% of the training classes' samples are held out to pick the best epoch. Two baselines:
``untrained`` (the randomly initialised encoder) and ``raw_pixels`` (flattened inputs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from embedlab import __version__
from embedlab._registry import parse_spec
from embedlab._validation import check_choice, check_fraction, check_int, check_positive_float
from embedlab.bench._grid import Grid, GridRun, LocalEngine, run_grid, status_printer
from embedlab.bench._record import BenchRecord, config_hash
from embedlab.data.labeled import LabeledData
from embedlab.data.mnist import load_digits, load_mnist
from embedlab.evaluate import clustering_metrics, retrieval_metrics
from embedlab.training.encoders import ENCODERS, make_encoder
from embedlab.training.metric import MetricTrainer, embed

if TYPE_CHECKING:
    from embedlab.bench._ray_grid import RayEngine

__all__ = [
    "BASELINES",
    "DEMO_LOSSES",
    "METRIC_KEYS",
    "load_labeled",
    "metric_splits",
    "run_metric_bench",
    "run_metric_demo",
]

BASELINES = ("untrained", "raw_pixels")
METRIC_KEYS = ("precision_at_1", "map_at_r", "r_precision", "recall_at_10", "nmi", "ami")
DEMO_LOSSES = ("triplet", "supcon", "contrastive")


def load_labeled(spec: str) -> LabeledData:
    """``"digits"`` (bundled 8x8 digits), ``"mnist:PATH"`` (a folder of IDX files) or
    ``"shapes(n=..., size=..., seed=...)"`` (generated images, labelled by their shape)."""
    if not isinstance(spec, str):
        raise TypeError(f"data must be a string like 'digits' or 'mnist:PATH', got {spec!r}")
    if spec.partition("(")[0].strip() == "shapes":
        from embedlab.data.shapes import load_factor_data

        return load_factor_data(spec).labeled("shape")
    kind, _, path = spec.partition(":")
    check_choice("data kind", kind, ("digits", "mnist", "shapes"))
    if kind == "digits":
        if path:
            raise ValueError(f"data 'digits' takes no path, got {spec!r}")
        return load_digits()
    if not path:
        raise ValueError(f"data 'mnist' needs a folder: mnist:PATH, got {spec!r}")
    return load_mnist(path)


def metric_splits(
    data: LabeledData,
    train_classes: Sequence[int] = (0, 1, 2, 3, 4),
    test_classes: Sequence[int] = (5, 6, 7, 8, 9),
) -> tuple[LabeledData, LabeledData]:
    """``(train, test)``: samples of the training classes and of the unseen test classes."""
    overlap = set(train_classes) & set(test_classes)
    if overlap:
        raise ValueError(f"train and test classes must not overlap, got {sorted(overlap)}")
    return (
        data.select_classes(tuple(train_classes), name=data.name),
        data.select_classes(tuple(test_classes), name=data.name),
    )


def _remap(data: LabeledData) -> LabeledData:
    """Labels as ``0..n_classes-1`` (losses with class parameters need class ids)."""
    classes = np.unique(data.y)
    return LabeledData(data.x, np.searchsorted(classes, data.y), name=data.name)


def _evaluate(emb: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, float]:
    r = retrieval_metrics(emb, labels, k=(1, 10))
    c = clustering_metrics(emb, labels, seed=seed)
    values = {**r, **c}
    return {k: float(values[k]) for k in METRIC_KEYS}


def run_metric_bench(
    train: LabeledData,
    test: LabeledData,
    *,
    losses: Sequence[str],
    dim: int = 64,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    seeds: Sequence[int] = (0,),
    model: str | None = None,
    valid_fraction: float = 0.1,
    baselines: bool = True,
    progress: bool = True,
    on_record: Callable[[BenchRecord], None] | None = None,
    recorded: Iterable[BenchRecord] = (),
    engine: LocalEngine | RayEngine | None = None,
    device: str = "cpu",
) -> list[BenchRecord]:
    """Train one encoder per (loss, seed) on ``train``; retrieval and clustering on ``test``.

    Args:
        train: the training classes' samples (e.g. digits 0-4).
        test: the unseen classes' samples (e.g. 5-9), searched leave-one-out.
        losses: loss spec strings (``"triplet(margin=0.1)"``); unknown names fail before any
            training with the registry's list of valid ones.
        dim: embedding size; ``memory_bytes`` of a record is ``dim * 4`` (one float32 vector).
        epochs, batch_size, lr: the :class:`MetricTrainer` settings shared by every loss.
        seeds: one run per seed and loss.
        model: ``"cnn"`` or ``"mlp"``; default ``cnn`` for 28x28 images, else ``mlp``.
        valid_fraction: share of ``train`` held out to choose the best epoch.
        baselines: add ``untrained`` and ``raw_pixels`` records (once per seed).
        progress: show progress bars (never inside Ray tasks).
        on_record: called with each record as soon as it is measured.
        recorded: records of earlier runs; runs among them (same dataset, method, seed and
            config hash) are skipped.
        device: the torch device the encoders train on (``params["device"]``; not hashed).
        engine: ``None`` trains in this process; a :class:`~embedlab.bench.RayEngine`
            trains each (method, seed) as a Ray task. The data is the same for every seed
            (the seed picks the held-out samples, inside the run).

    Returns:
        Records of suite ``"metric"``, per seed the baselines first, then the losses;
        metrics ``precision_at_1`` (first, the report's primary),
        ``map_at_r``, ``r_precision``, ``recall_at_10``, ``nmi``, ``ami``; timing ``train_s``,
        ``samples_per_s``. A loss whose training fails gets ``status="failed"`` and the error.
    """
    from embedlab.losses import LOSSES

    dim = check_int("dim", dim, min_value=1)
    check_int("epochs", epochs, min_value=1)
    check_int("batch_size", batch_size, min_value=2)
    check_positive_float("lr", lr)
    check_fraction("valid_fraction", valid_fraction)
    if not losses and not baselines:
        raise ValueError("losses must not be empty")
    if not seeds:
        raise ValueError("seeds must not be empty")
    for s in seeds:
        check_int("seed", s, min_value=0)
    for spec in losses:
        LOSSES.get(parse_spec(spec)[0])  # unknown names fail before any training
    shape = tuple(int(s) for s in train.x.shape[1:])
    if tuple(test.x.shape[1:]) != shape:
        raise ValueError(f"test inputs must have the train shape {shape}, got {test.x.shape[1:]}")
    if model is None:
        square = len(shape) == 3 and shape[1] == shape[2]
        model = "cnn" if square and shape[1] >= 16 and shape[1] % 4 == 0 else "mlp"
    check_choice("model", model, ENCODERS)
    train, test = _remap(train), _remap(test)
    n_classes = int(train.y.max()) + 1
    base_params: dict[str, Any] = {
        "dim": dim,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "n_train": len(train),
        "n_test": len(test),
        "n_train_classes": n_classes,
        "n_test_classes": int(np.unique(test.y).size),
        "protocol": "unseen classes, leave-one-out retrieval",
    }
    setup = _Setup(
        train, test, model, shape, n_classes, dim, epochs, batch_size, lr, valid_fraction,
        progress and (engine is None or isinstance(engine, LocalEngine)), base_params, device,
    )  # fmt: skip
    methods = [*(BASELINES if baselines else ()), *losses]
    settings = {**base_params, "model": model, "valid_fraction": valid_fraction, "shape": shape}
    grid = Grid(
        suite="metric",
        dataset=train.name,
        config_hash=config_hash(settings),
        runs=[GridRun(method, seed) for seed in seeds for method in methods],
        task=_metric_task,
        data=lambda seed: setup,  # one object for every seed: Ray puts it once
    )
    announce = status_printer() if progress else None
    return run_grid(grid, recorded=recorded, engine=engine, on_record=on_record, announce=announce)


@dataclass(frozen=True)
class _Setup:
    """Everything a metric run needs besides its (method, seed)."""

    train: LabeledData
    test: LabeledData
    model: str
    shape: tuple[int, ...]
    n_classes: int
    dim: int
    epochs: int
    batch_size: int
    lr: float
    valid_fraction: float
    progress: bool
    base_params: dict[str, Any]
    device: str = "cpu"


def _metric_task(setup: _Setup, run: GridRun) -> BenchRecord:
    """One grid run: a baseline, or one loss trained (module-level: Ray sends it by name)."""
    seed, test = run.seed, setup.test
    start = time.perf_counter()
    if run.method == "untrained":
        encoder = make_encoder(setup.model, setup.dim, setup.shape, seed=seed)
        metrics = _evaluate(embed(encoder, test.x), test.y, seed)
        return _record(setup, "untrained", setup.dim, metrics, seed, start)
    if run.method == "raw_pixels":
        raw = test.flat()
        rec = _record(setup, "raw_pixels", raw.shape[1], _evaluate(raw, test.y, seed), seed, start)
        rec.params["encoder"] = "none"
        return rec
    fit_part, valid_part = _holdout(setup.train, setup.valid_fraction, seed)
    return _train_one(setup, run.method, fit_part, valid_part, seed)


def _holdout(
    data: LabeledData, fraction: float, seed: int
) -> tuple[LabeledData, LabeledData | None]:
    rng = np.random.default_rng(seed)
    mask = rng.random(len(data)) < fraction
    if mask.sum() < 2 or (~mask).sum() < 2:
        return data, None
    return (
        LabeledData(data.x[~mask], data.y[~mask], name=data.name),
        LabeledData(data.x[mask], data.y[mask], name=data.name),
    )


def _record(
    setup: _Setup, method: str, dim: int, metrics: dict[str, float], seed: int, start: float
) -> BenchRecord:
    return BenchRecord(
        suite="metric",
        dataset=setup.train.name,
        model=setup.model,
        method=method,
        memory_bytes=dim * 4,
        metrics=metrics,
        timing={"train_s": 0.0, "eval_s": time.perf_counter() - start},
        params={**setup.base_params, "embedding_dim": dim, "device": setup.device},
        seed=seed,
        embedlab_version=__version__,
    )


def _train_one(
    setup: _Setup, spec: str, train: LabeledData, valid: LabeledData | None, seed: int
) -> BenchRecord:
    from embedlab.losses import make_loss

    dim = setup.dim
    record = BenchRecord(
        suite="metric",
        dataset=train.name,
        model=setup.model,
        method=spec,
        memory_bytes=dim * 4,
        seed=seed,
        embedlab_version=__version__,
        params=dict(setup.base_params),
    )
    encoder = make_encoder(setup.model, dim, setup.shape, seed=seed)
    loss_kwargs: dict[str, Any] = {}
    name, spec_kwargs = parse_spec(spec)
    if name == "starbucks" and "pairs" not in spec_kwargs:
        n_layers = int(getattr(encoder, "n_layers", 1))
        dims = [max(1, dim >> (n_layers - 1 - i)) for i in range(n_layers)]
        loss_kwargs["pairs"] = tuple((i, d) for i, d in enumerate(dims))
    try:
        loss = make_loss(spec, dim=dim, n_classes=setup.n_classes, **loss_kwargs)
        trainer = MetricTrainer(
            epochs=setup.epochs,
            batch_size=setup.batch_size,
            lr=setup.lr,
            seed=seed,
            progress=setup.progress,
            device=setup.device,
        )
        result = trainer.fit(encoder, loss, train, valid)
        start = time.perf_counter()
        emb = embed(encoder, setup.test.x, device=setup.device)
        record.metrics = _evaluate(emb, setup.test.y, seed)
        eval_s = time.perf_counter() - start
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:
        record.status = "failed"
        record.error = f"{type(exc).__name__}: {exc}"
        return record
    record.timing = {
        "train_s": result.train_seconds,
        "samples_per_s": result.samples_per_second,
        "eval_s": eval_s,
    }
    record.params.update(
        {
            "loss": name,
            "input_kind": str(getattr(loss, "input_kind", "labels")),
            "best_epoch": result.best_epoch,
            "steps": result.steps,
            "embedding_dim": dim,
            "loss_params": sum(p.numel() for p in loss.parameters()),
        }
    )
    if result.best_valid_precision_at_1 is not None:
        record.params["valid_precision_at_1"] = result.best_valid_precision_at_1
    bench_params = getattr(loss, "bench_params", None)  # state a loss learned (e.g. DSL's K)
    if callable(bench_params):
        record.params.update(bench_params())
    return record


def run_metric_demo(
    *, progress: bool = True, on_record: Callable[[BenchRecord], None] | None = None
) -> list[BenchRecord]:
    """The quick metric suite of ``embedlab demo``: bundled digits, MLP, dim 32, 30 epochs,
    the registered losses among :data:`DEMO_LOSSES` plus the two baselines."""
    from embedlab.losses import LOSSES

    train, test = metric_splits(load_digits())
    losses = [name for name in DEMO_LOSSES if name in LOSSES]
    return run_metric_bench(
        train,
        test,
        losses=losses,
        dim=32,
        epochs=30,
        batch_size=64,
        lr=1e-3,
        seeds=(0,),
        model="mlp",
        progress=progress,
        on_record=on_record,
    )
