"""One CTR training run as ``python -m embedlab.train ctr`` / ``torchrun ... -m embedlab.train``
performs it: data spec -> batch source -> table + model -> streamed (DDP) training ->
``model.safetensors``, ``config.json``, ``metrics.json`` and per-epoch checkpoints."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors

from embedlab import __version__
from embedlab._io import atomic_write_bytes, atomic_write_text
from embedlab._registry import parse_spec
from embedlab._validation import check_compression, check_int, check_optional_int
from embedlab.data import load_ctr
from embedlab.fields import Field
from embedlab.models import MODELS, CTRModel, make_model
from embedlab.tables import TABLES, make_table
from embedlab.training._dist import (
    DistributedRunError,
    init_distributed,
    shutdown_distributed,
)
from embedlab.training._run_checkpoint import read_checkpoint_meta, tensors_bytes
from embedlab.training._stream import BatchSource, MemorySource
from embedlab.training.distributed import DistributedCTRTrainer

__all__ = ["CTRRunConfig", "load_trained_ctr", "open_batch_source", "run_ctr"]

SHARDS = "shards"


@dataclass(frozen=True)
class CTRRunConfig:
    """What ``embedlab.train ctr`` trains; stored in ``config.json`` and every checkpoint.

    Args:
        data: a data spec: ``synthetic``, ``frappe:DIR``, ... (read into memory and
            streamed) or ``shards:DIR`` (Parquet shards, read lazily).
        model / method: model and table spec strings (``"deepfm"``, ``"qr(op=add)"``).
        compression: the table's memory budget factor (1 for ``full``).
        dim: embedding dimension.
        seed: data split, initialisation, shuffling and dropout.
        epochs / batch_size / lr / patience / weight_decay / embedding_l2 / shuffle_buffer:
            trainer settings (``batch_size`` is the global batch over all ranks).
        max_train_seconds: stop training once it has run this long (None: no limit); all
            ranks stop at the same step. ``metrics.json`` says how many rows were seen.
    """

    data: str
    model: str = "deepfm"
    method: str = "qr"
    compression: float = 100.0
    dim: int = 16
    seed: int = 0
    epochs: int = 10
    batch_size: int = 2048
    lr: float = 1e-3
    patience: int | None = 2
    weight_decay: float = 0.0
    embedding_l2: float = 0.0
    shuffle_buffer: int = 1 << 16
    max_train_seconds: float | None = None

    def __post_init__(self) -> None:
        check_int("dim", self.dim, min_value=1)
        check_int("seed", self.seed, min_value=0)
        check_optional_int("patience", self.patience, min_value=1)
        object.__setattr__(self, "compression", check_compression(self.compression))
        TABLES.get(parse_spec(self.method)[0])  # unknown names fail before any data is read
        MODELS.get(parse_spec(self.model)[0])

    def trainer(self, *, progress: bool = True) -> DistributedCTRTrainer:
        """The trainer these settings describe."""
        return DistributedCTRTrainer(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            patience=self.patience,
            weight_decay=self.weight_decay,
            embedding_l2=self.embedding_l2,
            shuffle_buffer=self.shuffle_buffer,
            seed=self.seed,
            progress=progress,
            max_train_seconds=self.max_train_seconds,
        )


def open_batch_source(spec: str, *, seed: int = 0) -> BatchSource:
    """The one place a data spec becomes a :class:`BatchSource`.

    ``shards:DIR`` opens the Parquet shards of ``embedlab data prepare`` lazily
    (:class:`~embedlab.data.CTRShards`: each rank reads its own shards, rows are never all in
    memory); every other spec is read by :func:`~embedlab.data.load_ctr` into memory and
    served by :class:`MemorySource`.
    """
    name, _, rest = spec.strip().partition(":")
    if name.strip() == SHARDS:
        from embedlab.data import CTRShards

        if not rest.strip():
            raise ValueError(f"data spec {spec!r} must be shards:DIR (a prepared folder)")
        return CTRShards(Path(rest.strip()).expanduser())
    return MemorySource(load_ctr(spec, seed=seed))


def build_model(config: CTRRunConfig, fields: tuple[Field, ...], n_dense: int) -> CTRModel:
    """The table and model of ``config`` for ``fields`` (seeded: every rank builds the same)."""
    torch.manual_seed(config.seed)
    table = make_table(
        config.method, fields, config.dim, compression=config.compression, seed=config.seed
    )
    return make_model(config.model, table, seed=config.seed, n_dense=n_dense)


def _fields_json(fields: tuple[Field, ...]) -> list[dict[str, Any]]:
    return [{"name": f.name, "cardinality": f.cardinality} for f in fields]


def run_ctr(
    config: CTRRunConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    timeout_s: float = 600.0,
    progress: bool = True,
    source: BatchSource | None = None,
) -> dict[str, Any]:
    """Train ``config`` into folder ``out``; returns the metrics (the same on every rank).

    Joins the ``torchrun`` process group when there is one (:func:`init_distributed`) and
    leaves it at the end. Rank 0 writes ``out/model.safetensors`` (the best epoch's
    state dict), ``out/config.json`` (everything :func:`load_trained_ctr` needs),
    ``out/metrics.json`` (test AUC / logloss, samples/s, epochs, world size) and, after
    every epoch, ``out/checkpoint/``.

    Args:
        resume: continue from ``out/checkpoint`` (see :meth:`DistributedCTRTrainer.fit_stream`).
        timeout_s: how long a rank waits in a collective for the others (a dead rank).
        source: use this source instead of opening ``config.data`` (tests, custom readers).
    """
    out = Path(out)
    rank, world = init_distributed(timeout_s=timeout_s)
    try:
        source = source if source is not None else open_batch_source(config.data, seed=config.seed)
        trainer = config.trainer(progress=progress)
        settings = {
            **asdict(config),
            "fields": _fields_json(tuple(source.fields)),
            "n_dense": source.n_dense,
        }
        if resume:  # a mismatch is named before the model is built
            read_checkpoint_meta(out / "checkpoint", trainer.run_config(settings))
        model = build_model(config, tuple(source.fields), source.n_dense)
        try:
            result = trainer.fit_stream(
                model, source, checkpoint_dir=out / "checkpoint", resume=resume, config=settings
            )
            test = trainer.evaluate_stream(model, source, "test")
        except DistributedRunError as exc:
            raise DistributedRunError(
                f"{exc}; the last checkpoint in {out / 'checkpoint'} stays loadable: rerun "
                "with --resume"
            ) from exc
        metrics: dict[str, Any] = {
            "test_auc": test["auc"],
            "test_logloss": test["logloss"],
            "best_valid_auc": result.best_valid_auc,
            "samples_per_second": result.samples_per_second,
            "train_seconds": result.train_seconds,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "stop_reason": result.stop_reason,
            "world_size": world,
            "memory_bytes": int(model.table.memory_bytes()),
            "history": result.history,
        }
        if rank == 0:
            atomic_write_bytes(out / "model.safetensors", tensors_bytes(model.state_dict()))
            record = {**settings, "world_size": world, "embedlab_version": __version__}
            atomic_write_text(out / "config.json", json.dumps(record, indent=1) + "\n")
            atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    except BaseException:
        shutdown_distributed(wait=False)
        raise
    shutdown_distributed()
    return metrics


def load_trained_ctr(run: str | os.PathLike[str]) -> tuple[CTRRunConfig, CTRModel]:
    """Rebuild the model a run wrote to folder ``run`` (``config.json`` + ``model.safetensors``).

    Tables that learned their structure in a search phase (pruned rows, kept dims, merged
    duplicates) load it from the weights through their own load hooks: every multi-phase
    table gives bit-identical embeddings after a reload
    (``tests/tables/test_trained_table_reload.py``).
    """
    run = Path(run)
    record: Mapping[str, Any] = json.loads((run / "config.json").read_text(encoding="utf-8"))
    names = set(CTRRunConfig.__dataclass_fields__)
    config = CTRRunConfig(**{k: v for k, v in record.items() if k in names})
    fields = tuple(Field(f["name"], f["cardinality"]) for f in record["fields"])
    model = build_model(config, fields, int(record["n_dense"]))
    model.load_state_dict(load_safetensors((run / "model.safetensors").read_bytes()))
    return config, model
