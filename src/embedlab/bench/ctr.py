"""The CTR suite: every embedding-table method x memory budget, same model and data.

For each seed the full float32 table is trained first (the reference), then
each method at each compression. A method that cannot fit a budget yields an
``infeasible`` record; a table that reports more memory than its budget is a
bug and stops the run.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from embedlab import __version__
from embedlab._registry import parse_spec
from embedlab._validation import (
    BudgetError,
    check_compression,
    check_int,
    check_keywords,
    check_positive_float,
)
from embedlab.bench._ctr_reference import REFERENCE
from embedlab.bench._ctr_reference import VersusReference as _VersusReference
from embedlab.bench._grid import Grid, GridRun, LocalEngine, run_grid, status_printer
from embedlab.bench._record import BenchRecord, config_hash
from embedlab.bench._tune import TrainSettings, pick_tuned, takes_dropout, tune_candidates
from embedlab.data import CTRSplits
from embedlab.models import MODELS, hyper_parameters, make_model
from embedlab.tables import EmbeddingTable, check_table_spec, make_table
from embedlab.training import CTRTrainer, auc_score, gauc_score

if TYPE_CHECKING:
    from embedlab.bench._ray_grid import RayEngine

__all__ = ["CTRBenchConfig", "run_ctr_bench"]


@dataclass
class CTRBenchConfig:
    """What the CTR suite runs. Method and model entries are spec strings (``"qr(op=add)"``)."""

    model: str = "deepfm"
    methods: Sequence[str] = ("full", "hash", "qr", "ue")
    compressions: Sequence[float] = (10.0, 100.0)
    dim: int = 16
    epochs: int = 10
    batch_size: int = 2048
    lr: float = 1e-3
    patience: int = 2
    seeds: Sequence[int] = (0,)
    progress: bool = True
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    #: L2 on looked-up embeddings / Adam weight decay on the dense net (``CTRTrainer``)
    embedding_l2: float = 0.0
    weight_decay: float = 0.0
    #: candidates of the per-run search of training settings (1: no tuning; see ``_tune``)
    tune: int = 1
    #: torch device every run trains on (recorded in ``params["device"]``, not hashed)
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_int("dim", self.dim, min_value=1)
        check_positive_float("embedding_l2", self.embedding_l2, strict=False)
        check_positive_float("weight_decay", self.weight_decay, strict=False)
        tune_candidates(self.tune, self.train_settings())  # checks tune
        check_int("epochs", self.epochs, min_value=1)
        check_int("batch_size", self.batch_size, min_value=1)
        check_int("patience", self.patience, min_value=1)
        if not self.methods:
            raise ValueError("methods must not be empty")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        for s in self.seeds:
            check_int("seed", s, min_value=0)
        self.compressions = [check_compression(c) for c in self.compressions]
        if not self.compressions:
            raise ValueError("compressions must not be empty")
        for spec in self.methods:  # unknown names and keywords fail before any training
            check_table_spec(spec)
        model_name, model_kwargs = parse_spec(self.model)
        check_keywords(
            f"model {model_name!r}",
            {**model_kwargs, **self.model_kwargs},
            hyper_parameters(MODELS.get(model_name)),
        )

    def check_data(self, splits: CTRSplits) -> None:
        """Raise ``ValueError`` when the model needs inputs ``splits`` does not carry."""
        model = MODELS.get(parse_spec(self.model)[0])
        if model.requires_history and splits.train.history is None:
            raise ValueError(
                f"model {self.model!r} needs behaviour-sequence data (a history per row), "
                f"e.g. --data movielens-seq:DIR or synthetic-seq; {splits.name!r} has none"
            )

    def train_settings(self) -> TrainSettings:
        """The untuned training settings (candidate 0 of a tuned run)."""
        return TrainSettings(
            lr=self.lr,
            batch_size=self.batch_size,
            epochs=self.epochs,
            patience=self.patience,
            embedding_l2=self.embedding_l2,
            weight_decay=self.weight_decay,
        )

    def settings(self, splits: CTRSplits, *, per_seed_split: bool) -> dict[str, Any]:
        """What changes results (hashed into each record's ``config_hash``): the training
        settings and the data's sizes; not ``methods`` / ``seeds`` (a record's own key)
        nor ``progress``."""
        return {
            "model": self.model,
            "model_kwargs": self.model_kwargs,
            "dim": self.dim,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "patience": self.patience,
            "embedding_l2": self.embedding_l2,
            "weight_decay": self.weight_decay,
            "tune": self.tune,
            "data": {
                "n_train": len(splits.train),
                "n_valid": len(splits.valid),
                "n_test": len(splits.test),
                "cardinalities": [f.cardinality for f in splits.fields],
                "split": "per_seed" if per_seed_split else "fixed",
            },
        }

    def runs(self) -> list[tuple[int, str, float]]:
        """(seed, method spec, compression) in run order; the reference runs once per seed."""
        out: list[tuple[int, str, float]] = []
        for seed in self.seeds:
            out.append((seed, REFERENCE, 1.0))
            for spec in self.methods:
                if parse_spec(spec)[0] == REFERENCE:
                    continue
                out.extend((seed, spec, c) for c in self.compressions)
        return out


def run_ctr_bench(
    data: CTRSplits | Callable[[int], CTRSplits],
    config: CTRBenchConfig,
    *,
    on_record: Callable[[BenchRecord], None] | None = None,
    recorded: Iterable[BenchRecord] = (),
    engine: LocalEngine | RayEngine | None = None,
) -> list[BenchRecord]:
    """Train and test every (method, compression, seed) of ``config``.

    Args:
        data: train / valid / test data sharing the same fields, or ``load(seed)`` giving
            them for a seed (e.g. ``lambda s: load_ctr("frappe:DIR", seed=s)``), so that each
            seed gets its own split. Records say which: ``params["split_seed"]`` is the seed
            the loader got, or ``None`` for one fixed ``CTRSplits``.
        config: the grid and the training settings.
        on_record: called with each record as soon as it is final (e.g. to save progress).
        recorded: records of earlier runs; runs already among them (same dataset, method,
            compression, seed and config hash) are skipped, not trained again.
        engine: ``None`` trains in this process, one run after the other; a
            :class:`~embedlab.bench.RayEngine` trains each run as a Ray task.

    Returns:
        One :class:`BenchRecord` per run, the reference (``full``) first for each seed.
        ``auc_delta_vs_full`` and ``samples_per_s_vs_full`` compare a run with the
        reference of its seed; under Ray a record waits for its reference before
        ``on_record`` sees it.
    """
    cache: dict[int, tuple[CTRSplits, int | None]] = {}

    def load(seed: int) -> tuple[CTRSplits, int | None]:
        if seed not in cache:
            cache[seed] = (data, None) if isinstance(data, CTRSplits) else (data(seed), seed)
        return cache[seed]

    first, _ = load(config.seeds[0])
    config.check_data(first)
    announce = status_printer() if config.progress else None
    if engine is not None and not isinstance(engine, LocalEngine):
        config = dataclasses.replace(config, progress=False)  # no bars inside Ray workers
    grid = Grid(
        suite="ctr",
        dataset=first.name,
        config_hash=config_hash(
            config.settings(first, per_seed_split=not isinstance(data, CTRSplits))
        ),
        runs=[GridRun(spec, seed, c) for seed, spec, c in config.runs()],
        task=functools.partial(_ctr_task, config),
        data=load,
    )
    return run_grid(
        grid,
        recorded=recorded,
        engine=engine,
        collector=_VersusReference(),
        on_record=on_record,
        announce=announce,
    )


def _ctr_task(
    config: CTRBenchConfig, data: tuple[CTRSplits, int | None], run: GridRun
) -> BenchRecord:
    """One grid run (module-level: Ray sends it to workers by reference)."""
    splits, split_seed = data
    assert run.compression is not None  # every CTR run has a budget
    base = config.train_settings()
    trials = []
    for settings in tune_candidates(config.tune, base):
        trials.append(_run_one(splits, config, run.method, run.compression, run.seed, settings))
        if trials[-1].status != "ok":  # infeasible for one setting is infeasible for all
            break
    record = trials[0] if len(trials) == 1 else pick_tuned(trials)
    record.params["split_seed"] = split_seed
    record.params["device"] = config.device
    oracle = _oracle_auc(splits)
    if oracle is not None:
        record.params["oracle_auc"] = oracle
    return record


def _oracle_auc(splits: CTRSplits) -> float | None:
    test = splits.test
    if test.oracle is None:
        return None
    return auc_score(test.labels, test.oracle)


def _run_one(
    splits: CTRSplits,
    config: CTRBenchConfig,
    spec: str,
    compression: float,
    seed: int,
    settings: TrainSettings,
) -> BenchRecord:
    name, _ = parse_spec(spec)
    record = BenchRecord(
        suite="ctr",
        dataset=splits.name,
        model=config.model,
        method=spec,
        compression=compression,
        seed=seed,
        embedlab_version=__version__,
    )
    torch.manual_seed(seed)
    build_start = time.perf_counter()
    try:
        table = make_table(spec, splits.fields, config.dim, compression=compression, seed=seed)
    except BudgetError as exc:
        record.status = "infeasible"
        record.error = str(exc)
        return record
    if len(table.phases) == 1:  # learned-structure tables reach the budget in their phases
        _check_budget(table, spec, compression)
    model_kwargs = dict(config.model_kwargs)
    if settings.dropout is not None and takes_dropout(config.model):
        model_kwargs["dropout"] = settings.dropout
    if splits.train.history_field is not None:  # sequence data: every model takes the history
        model_kwargs.setdefault("history_field", splits.train.history_field)
        if splits.train.history_side_fields:  # e.g. each history movie's genre
            model_kwargs.setdefault("history_side_fields", splits.train.history_side_fields)
    model = make_model(config.model, table, seed=seed, **model_kwargs)
    build_s = time.perf_counter() - build_start
    trainer = CTRTrainer(
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        patience=settings.patience,
        embedding_l2=settings.embedding_l2,
        weight_decay=settings.weight_decay,
        seed=seed,
        progress=config.progress,
        device=config.device,
    )
    result = trainer.fit(model, splits.train, splits.valid)
    _check_budget(table, spec, compression)
    eval_start = time.perf_counter()
    test_metrics = trainer.evaluate(model, splits.test)
    eval_s = time.perf_counter() - eval_start
    record.memory_bytes = int(table.memory_bytes())  # final, deployable form
    record.metrics = {"auc": test_metrics["auc"], "logloss": test_metrics["logloss"]}
    if splits.test.groups is not None:  # per-user AUC, as in DIN (not timed)
        test = splits.test
        record.metrics["gauc"] = gauc_score(test.labels, trainer.predict(model, test), test.groups)
    if result.best_valid_auc is not None:
        record.metrics["valid_auc"] = result.best_valid_auc
        best = [h for h in result.history if h["epoch"] == result.best_epoch]
        if best and "valid_logloss" in best[-1]:
            record.metrics["valid_logloss"] = best[-1]["valid_logloss"]
    record.timing = {
        "train_s": result.train_seconds,  # all phases, searches included
        "samples_per_s": result.samples_per_second,
        "build_s": build_s,
        "test_eval_s": eval_s,
    }
    record.params = {
        "table": name,
        "dim": config.dim,
        "full_bytes": table.full_bytes,
        "budget_bytes": table.budget_bytes,
        "compression_reached": table.full_bytes / max(1, record.memory_bytes),
        "model_dense_bytes": sum(
            p.numel() * p.element_size()
            for n, p in model.named_parameters()
            if not n.startswith("table.")
        ),
        "epochs": settings.epochs,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "batch_size": settings.batch_size,
        "lr": settings.lr,
        "patience": settings.patience,
        "embedding_l2": settings.embedding_l2,
        "weight_decay": settings.weight_decay,
        "dropout": _model_dropout(model),  # the model's own default when none was passed
        "n_train": len(splits.train),
        "n_valid": len(splits.valid),
        "n_test": len(splits.test),
        **{f"table_{k}": v for k, v in table.describe().items()},
    }
    record.params["history"] = _epoch_history(result.history, phased=len(result.phases) > 1)
    if len(result.phases) > 1:
        record.params["phases"] = [
            {k: v for k, v in p.items() if v is not None} for p in result.phases
        ]
    return record


def _model_dropout(model: torch.nn.Module) -> float | None:
    """The dropout rate the model trains with (None for a model without one, e.g. FM)."""
    rate = getattr(model, "dropout", None)
    return float(rate) if isinstance(rate, float | int) and not isinstance(rate, bool) else None


_HISTORY_KEYS = ("train_loss", "valid_auc", "valid_logloss")


def _epoch_history(
    history: list[dict[str, float]], *, phased: bool
) -> list[dict[str, float | int]]:
    """``params.history``: per epoch (all phases in order) its loss and validation scores;
    the phase index too when the table trains in several phases."""
    out: list[dict[str, float | int]] = []
    for h in history:
        entry: dict[str, float | int] = {"epoch": int(h["epoch"])}
        if phased and "phase" in h:
            entry["phase"] = int(h["phase"])
        entry.update({k: float(h[k]) for k in _HISTORY_KEYS if k in h})
        out.append(entry)
    return out


def _check_budget(table: EmbeddingTable, spec: str, compression: float) -> None:
    memory = table.memory_bytes()
    if memory > table.budget_bytes:
        raise RuntimeError(
            f"table {spec!r} broke its budget at compression {compression:g}: "
            f"memory_bytes {memory} > budget {table.budget_bytes}"
        )
