"""The metric suite on a view-pair source (``mnist-rot``): self-supervised view-pair methods.

``embedlab bench metric --data mnist-rot:PATH --losses sie,simclr`` keeps the metric suite's
protocol and record, with training on view pairs instead of labels:

- the images of classes 0-4 each get two random rotations within ``+-max_angle`` degrees
  (:func:`~embedlab.data.rotated_views.rotated_views`, seeded by the run's seed); the method
  trains on these pairs, labels unused, for all ``epochs`` (no held-out epoch choice);
- the unseen classes 5-9 get one fresh rotated view each (seed + 1000); leave-one-out
  retrieval and k-means clustering (:data:`~embedlab.bench.metric.METRIC_KEYS`) use the
  *invariant part* of their embeddings (the whole embedding for ``simclr`` / ``vicreg``);
- ``angle_r2``: R² of ``(sin, cos)`` of the relative rotation ``angle2 - angle1``, predicted
  from the pair of embeddings ``[z(view1), z(view2)]`` by an MLP probe fit on (up to 2,000)
  training-class pairs and scored on (up to 2,000) test-class pairs: from SIE's
  *equivariant part*, from the whole embedding for the invariant-only methods
  (``params["angle_r2_from"]``); SIE also gets ``angle_r2_inv`` from its invariant part.

Methods (:data:`VIEW_METHODS`, spec strings like the losses): ``sie(dim_eq=8)`` (SIE, the
last ``dim_eq`` of ``dim`` coordinates equivariant), ``vicreg`` (SIE's invariant-only
baseline, ``dim_eq=0``), ``simclr(temperature=0.1)`` (InfoNCE between the two views).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedlab import __version__
from embedlab._registry import parse_spec
from embedlab._validation import check_choice, check_int, check_keywords, check_positive_float
from embedlab.bench._grid import Grid, GridRun, run_grid, status_printer
from embedlab.bench._record import BenchRecord, config_hash
from embedlab.bench.metric import METRIC_KEYS
from embedlab.data.labeled import LabeledData
from embedlab.data.mnist import load_mnist
from embedlab.evaluate import clustering_metrics, retrieval_metrics

__all__ = [
    "VIEW_METHODS",
    "VIEW_SOURCES",
    "check_methods_for_source",
    "is_view_source",
    "load_view_source",
    "relative_angle_r2",
    "run_view_bench",
]

VIEW_SOURCES = ("mnist-rot",)
VIEW_METHODS: dict[str, tuple[str, ...]] = {
    "sie": ("dim_eq",),
    "simclr": ("temperature",),
    "vicreg": (),
}
"""View-pair method -> its spec keywords."""

_PROBE_ROWS = 2000


def is_view_source(spec: str) -> bool:
    """True for a ``--data`` spec of a view-pair source (``mnist-rot:PATH``)."""
    return isinstance(spec, str) and spec.partition(":")[0].strip() in VIEW_SOURCES


def load_view_source(spec: str) -> LabeledData:
    """The images and labels behind ``mnist-rot:PATH`` (the views are drawn per run)."""
    kind, _, path = spec.partition(":")
    check_choice("data kind", kind.strip(), VIEW_SOURCES)
    if not path:
        raise ValueError(f"data 'mnist-rot' needs a folder: mnist-rot:PATH, got {spec!r}")
    data = load_mnist(path)
    return LabeledData(data.x, data.y, name="mnist-rot")


def check_methods_for_source(specs: Sequence[str], *, view_pairs: bool) -> None:
    """Refuse a label-based loss on a view-pair source and a view-pair method on labelled data.

    Raises:
        ValueError: naming the spec, what it needs and what the source offers.
    """
    for spec in specs:
        name = parse_spec(spec)[0]
        if view_pairs and name not in VIEW_METHODS:
            raise ValueError(
                f"loss {name!r} cannot train on a view-pair source ({', '.join(VIEW_SOURCES)}): "
                f"it needs class labels; use one of {', '.join(VIEW_METHODS)} "
                "(simclr = InfoNCE between the two views)"
            )
        if not view_pairs and name in VIEW_METHODS:
            raise ValueError(
                f"method {name!r} trains on view pairs: use --data mnist-rot:PATH "
                "(labelled data takes the registered losses)"
            )


def relative_angle_r2(
    train_pairs: tuple[np.ndarray, np.ndarray],
    train_angle: np.ndarray,
    test_pairs: tuple[np.ndarray, np.ndarray],
    test_angle: np.ndarray,
    *,
    seed: int = 0,
) -> float:
    """R² of ``(sin, cos)`` of the relative angle from ``[z1, z2]`` by an MLP probe.

    Args:
        train_pairs, test_pairs: ``(z(view1), z(view2))``, each ``(n, d)``.
        train_angle, test_angle: ``(n,)`` relative angles in radians.
        seed: the probe's initialisation.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import r2_score
    from sklearn.neural_network import MLPRegressor
    from sklearn.preprocessing import StandardScaler

    def target(a: np.ndarray) -> np.ndarray:
        return np.stack([np.sin(a), np.cos(a)], axis=1)

    xtr, xte = np.concatenate(train_pairs, axis=1), np.concatenate(test_pairs, axis=1)
    scaler = StandardScaler().fit(xtr)
    mlp = MLPRegressor(
        hidden_layer_sizes=(64, 64), max_iter=200, early_stopping=True, random_state=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(scaler.transform(xtr), target(train_angle))
    return float(r2_score(target(test_angle), mlp.predict(scaler.transform(xte))))


@dataclass(frozen=True)
class _ViewSetup:
    train: LabeledData
    test: LabeledData
    model: str
    shape: tuple[int, ...]
    dim: int
    epochs: int
    batch_size: int
    lr: float
    max_angle: float
    base_params: dict[str, Any]


def run_view_bench(
    train: LabeledData,
    test: LabeledData,
    *,
    methods: Sequence[str],
    dim: int = 64,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 1e-3,
    seeds: Sequence[int] = (0,),
    model: str | None = None,
    max_angle: float = 90.0,
    on_record: Callable[[BenchRecord], None] | None = None,
    recorded: Iterable[BenchRecord] = (),
    progress: bool = True,
) -> list[BenchRecord]:
    """Train each view-pair method on rotated pairs of ``train``; evaluate on ``test``.

    Args:
        train: the training classes' images (e.g. digits 0-4), labels unused in training.
        test: the unseen classes' images (e.g. 5-9).
        methods: specs of :data:`VIEW_METHODS` (``"sie(dim_eq=8)"``, ``"simclr"``, ...).
        dim: embedding size (SIE: invariant ``dim - dim_eq`` + equivariant ``dim_eq``).
        epochs, batch_size, lr: Adam training shared by every method.
        seeds: one run per (method, seed); the seed also draws the rotations.
        model: encoder name (``cnn`` default for square images).
        max_angle: rotations are uniform in ``+-max_angle`` degrees.
        on_record, recorded, progress: as in :func:`~embedlab.bench.metric.run_metric_bench`.

    Returns:
        Records of suite ``"metric"`` with :data:`~embedlab.bench.metric.METRIC_KEYS` plus
        ``angle_r2`` (and ``angle_r2_inv`` for SIE); a failed run has ``status="failed"``.
    """
    from embedlab.training.encoders import ENCODERS

    dim = check_int("dim", dim, min_value=1)
    check_int("epochs", epochs, min_value=1)
    check_int("batch_size", batch_size, min_value=2)
    check_positive_float("lr", lr)
    max_angle = check_positive_float("max_angle", max_angle)
    if not methods:
        raise ValueError("methods must not be empty")
    if not seeds:
        raise ValueError("seeds must not be empty")
    for s in seeds:
        check_int("seed", s, min_value=0)
    check_methods_for_source(methods, view_pairs=True)
    for spec in methods:
        name, kwargs = parse_spec(spec)
        check_keywords(f"method {name!r}", kwargs, VIEW_METHODS[name])
        if name == "sie":
            d_eq = check_int("dim_eq", kwargs.get("dim_eq", 8), min_value=1)
            if d_eq >= dim:
                raise ValueError(f"sie dim_eq must be < dim={dim}, got {d_eq}")
    shape = tuple(int(s) for s in train.x.shape[1:])
    if len(shape) != 3:
        raise ValueError(f"a view-pair source needs (n, C, H, W) images, got {train.x.shape}")
    model = check_choice("model", model or "cnn", ENCODERS)
    base_params: dict[str, Any] = {
        "dim": dim,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "max_angle": max_angle,
        "n_train": len(train),
        "n_test": len(test),
        "n_train_classes": int(np.unique(train.y).size),
        "n_test_classes": int(np.unique(test.y).size),
        "protocol": (
            "self-supervised on two rotated views of the train classes (all epochs kept); "
            "unseen classes, leave-one-out retrieval on one rotated view, invariant part"
        ),
    }
    setup = _ViewSetup(
        train, test, model, shape, dim, epochs, batch_size, lr, max_angle, base_params
    )
    grid = Grid(
        suite="metric",
        dataset=train.name,
        config_hash=config_hash({**base_params, "model": model, "shape": shape}),
        runs=[GridRun(m, seed) for seed in seeds for m in methods],
        task=_view_task,
        data=lambda seed: setup,
    )
    announce = status_printer() if progress else None
    return run_grid(grid, recorded=recorded, on_record=on_record, announce=announce)


def _view_task(setup: _ViewSetup, run: GridRun) -> BenchRecord:
    """Train one view-pair method with one seed and measure it (module-level for Ray)."""
    from embedlab.data.rotated_views import rotated_views
    from embedlab.training.encoders import make_encoder
    from embedlab.training.sie import fit_sie, sie_embed
    from embedlab.training.simclr import fit_simclr

    seed, dim = run.seed, setup.dim
    name, kwargs = parse_spec(run.method)
    record = BenchRecord(
        suite="metric",
        dataset=setup.train.name,
        model=setup.model,
        method=run.method,
        memory_bytes=dim * 4,
        seed=seed,
        embedlab_version=__version__,
        params={**setup.base_params, "loss": name, "input_kind": "view_pairs"},
    )
    try:
        tr = rotated_views(setup.train.x, setup.train.y, max_angle=setup.max_angle, seed=seed)
        te = rotated_views(setup.test.x, setup.test.y, max_angle=setup.max_angle, seed=seed + 1000)
        encoder = make_encoder(setup.model, dim, setup.shape, seed=seed)
        fit: dict[str, Any] = {"epochs": setup.epochs, "batch_size": setup.batch_size}
        fit.update(lr=setup.lr, seed=seed, encoder=encoder)
        start = time.perf_counter()
        if name == "simclr":
            temperature = check_positive_float("temperature", kwargs.get("temperature", 0.1))
            res = fit_simclr(tr, dim=dim, temperature=temperature, **fit)
            record.params["temperature"] = temperature
        else:
            d_eq = int(kwargs.get("dim_eq", 8)) if name == "sie" else 0
            res = fit_sie(tr, dim_inv=dim - d_eq, dim_eq=d_eq, **fit)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        inv_te, eq_te = sie_embed(res, te.view1)
        metrics = _retrieval(inv_te, te.labels.numpy(), seed)
        rng = np.random.default_rng(seed)
        i_tr = np.sort(rng.permutation(len(tr.labels))[:_PROBE_ROWS])
        i_te = np.sort(rng.permutation(len(te.labels))[:_PROBE_ROWS])
        parts_tr = [sie_embed(res, v[i_tr]) for v in (tr.view1, tr.view2)]
        parts_te = [(inv_te[i_te], eq_te[i_te]), sie_embed(res, te.view2[i_te])]
        a_tr, a_te = tr.relative_angle.numpy()[i_tr], te.relative_angle.numpy()[i_te]
        part = 1 if res.dim_eq else 0  # the equivariant part where there is one

        def r2(p: int) -> float:
            pairs_tr = (parts_tr[0][p], parts_tr[1][p])
            pairs_te = (parts_te[0][p], parts_te[1][p])
            return relative_angle_r2(pairs_tr, a_tr, pairs_te, a_te, seed=seed)

        metrics["angle_r2"] = r2(part)
        if res.dim_eq:
            metrics["angle_r2_inv"] = r2(0)
        eval_s = time.perf_counter() - start
    except (RuntimeError, ValueError, TypeError) as exc:
        record.status = "failed"
        record.error = f"{type(exc).__name__}: {exc}"
        return record
    record.metrics = metrics
    n_seen = setup.epochs * len(tr.labels)
    record.timing = {"train_s": train_s, "samples_per_s": n_seen / train_s, "eval_s": eval_s}
    record.params.update(
        {
            "embedding_dim": dim,
            "dim_inv": res.dim_inv,
            "dim_eq": res.dim_eq,
            "retrieval_on": "invariant part" if res.dim_eq else "whole embedding",
            "angle_r2_from": "equivariant part" if res.dim_eq else "whole embedding",
            "angle_r2_probe": "MLP(64,64) on [z(view1), z(view2)] -> (sin, cos) of the "
            "relative angle; fit on train-class pairs, scored on test-class pairs",
            "final_loss": res.history[-1]["total"],
        }
    )
    return record


def _retrieval(emb: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, float]:
    values = {
        **retrieval_metrics(emb, labels, k=(1, 10)),
        **clustering_metrics(emb, labels, seed=seed),
    }
    return {k: float(values[k]) for k in METRIC_KEYS}
