"""The embedding-table protocol and the budget arithmetic every method shares."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import torch
from torch import nn

from embedlab._validation import (
    check_compression,
    check_ids_in_range,
    check_ids_tensor,
    check_int,
)
from embedlab.fields import Field
from embedlab.tables._phase_state import PhaseState, capture_phase_state, restore_phase_state
from embedlab.tables._phases import PhaseContext

if TYPE_CHECKING:  # the export module builds on this one
    from embedlab.tables._export_util import ExportCheck, ExportConfig

__all__ = ["FLOAT32_BYTES", "EmbeddingTable", "full_table_bytes"]

FLOAT32_BYTES = 4
_POSITIONAL = ("fields", "dim", "compression", "seed")


def full_table_bytes(fields: Sequence[Field], dim: int) -> int:
    """Bytes of the float32 reference table: ``sum(cardinalities) * dim * 4``."""
    return sum(f.cardinality for f in fields) * dim * FLOAT32_BYTES


class EmbeddingTable(nn.Module):
    """Base class: maps ids of several fields to vectors under a memory budget.

    Subclasses implement :meth:`embed` and map the budget
    (``budget_bytes = full_bytes / compression``) to their own hyper-parameters
    in ``__init__``; they raise :class:`~embedlab.BudgetError` when they cannot fit.

    Args:
        fields: the categorical fields, in the column order of ``ids``.
        dim: output dimension of every field's embedding.
        compression: the table must use at most ``full_bytes / compression`` bytes.
        seed: seeds every random choice (initialisation, hash functions).

    Shapes:
        ``forward(ids)``: ids ``(batch, n_fields)`` int64 -> ``(batch, n_fields, dim)`` float32.

    Memory: :meth:`memory_bytes` reports the final, deployable form. A table that
    learns its structure (declares several :attr:`phases`) may hold more while it
    searches; the budget is checked after its last phase.

    Validation: with :attr:`validate_ids` (the default) every forward checks the ids'
    dtype, shape and range, which needs data-dependent control flow; ``set_validation(False)``
    skips it so ``torch.export`` / ``torch.compile(fullgraph=True)`` can trace the lookup.

    Export: :meth:`export` writes the deployable form (one safetensors file, see
    :mod:`embedlab.tables._export`); a method whose training state is not its deployable
    form overrides the pair :meth:`_export_tensors` / :meth:`_from_export`.
    """

    #: registry name, set by ``@TABLES.register``-decorated subclasses
    name: ClassVar[str] = ""
    #: whether ids >= cardinality are an error (False for hashing methods by design)
    strict_ids: ClassVar[bool] = True
    #: training phases, in order; the trainer runs one full training (fresh optimizer,
    #: early stopping, best-epoch restore) per phase and calls :meth:`start_phase` /
    #: :meth:`end_phase` around each. Methods that learn their structure use e.g.
    #: ``("search", "retrain")``.
    phases: ClassVar[tuple[str, ...]] = ("train",)
    #: Python attributes that phases or steps change and :meth:`state_dict` does not hold
    #: (JSON values, tensors or ``torch.Generator``\ s, None included); a checkpoint
    #: stores them so a run resumed inside any phase continues as the uninterrupted one
    #: (:meth:`phase_state` / :meth:`restore_phase`)
    resume_attrs: ClassVar[tuple[str, ...]] = ()
    #: the deployable form: ``"state"`` (the persistent state as it is) or a key of
    #: :data:`embedlab.tables._export_methods.HOOKS` (codes, sparse values, pointers, ...)
    export_format: ClassVar[str] = "state"
    #: the keyword hyper-parameters the table was built with (recorded by ``__new__``)
    _hyper: dict[str, Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        obj = super().__new__(cls)
        # Keyword hyper-parameters, as given: what an export needs to rebuild the table.
        hyper = {k: v for k, v in kwargs.items() if k not in _POSITIONAL}
        object.__setattr__(obj, "_hyper", hyper)
        return obj

    def __init__(
        self, fields: Sequence[Field], dim: int, *, compression: float = 1.0, seed: int = 0
    ) -> None:
        super().__init__()
        fields = tuple(fields)
        if not fields:
            raise ValueError("fields must not be empty, got 0 fields")
        for f in fields:
            if not isinstance(f, Field):
                raise TypeError(f"fields must be Field instances, got {type(f).__name__}")
        self.fields: tuple[Field, ...] = fields
        self.dim = check_int("dim", dim, min_value=1)
        self.compression = check_compression(compression)
        self.seed = check_int("seed", seed, min_value=0)
        self.validate_ids = True

    def hyper_parameters(self) -> dict[str, Any]:
        """The keyword hyper-parameters given at construction (not ``compression``, ``seed``)."""
        return dict(self._hyper)

    def set_validation(self, on: bool) -> Self:
        """Turn the per-forward id checks on or off (see :attr:`validate_ids`); returns self."""
        self.validate_ids = bool(on)
        return self

    # --- budget -------------------------------------------------------------
    @property
    def n_fields(self) -> int:
        """Number of fields (columns of ``ids``)."""
        return len(self.fields)

    @property
    def cardinalities(self) -> list[int]:
        """The fields' cardinalities, in column order."""
        return [f.cardinality for f in self.fields]

    @property
    def full_bytes(self) -> int:
        """Bytes of the uncompressed float32 table: ``sum(cardinalities) * dim * 4``."""
        return full_table_bytes(self.fields, self.dim)

    @property
    def budget_bytes(self) -> int:
        """The most bytes this table may use: ``floor(full_bytes / compression)``."""
        return int(self.full_bytes // self.compression)

    def memory_bytes(self) -> int:
        """Bytes needed at inference: parameters and persistent buffers at their real dtypes."""
        total = sum(p.numel() * p.element_size() for p in self.parameters())
        persistent = {name for name, _ in self.named_buffers() if self._is_persistent(name)}
        total += sum(
            b.numel() * b.element_size() for n, b in self.named_buffers() if n in persistent
        )
        return int(total)

    def _is_persistent(self, name: str) -> bool:
        module: nn.Module = self
        *path, leaf = name.split(".")
        for part in path:
            module = getattr(module, part)
        return leaf not in module._non_persistent_buffers_set

    # --- forward ------------------------------------------------------------
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.validate_ids:
            check_ids_tensor(ids, self.n_fields)
            if self.strict_ids:
                check_ids_in_range(ids, self.cardinalities, [f.name for f in self.fields])
        return self.embed(ids.to(torch.int64))

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Look up validated int64 ids ``(batch, n_fields)`` -> ``(batch, n_fields, dim)``."""
        raise NotImplementedError

    # --- training hooks -----------------------------------------------------
    def regularization(self) -> torch.Tensor:
        """An extra loss term added by the trainer; zero for most methods."""
        return torch.zeros((), device=self._device())

    def on_step(self, step: int) -> None:
        """Called by the trainer after every optimizer step."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called by the trainer after every epoch."""

    def start_phase(self, phase: str, ctx: PhaseContext) -> None:
        """Called before phase ``phase`` (one of :attr:`phases`) trains."""

    def end_phase(self, phase: str, ctx: PhaseContext) -> None:
        """Called after phase ``phase`` trained and its best epoch was restored.

        Methods that search cut themselves to the budget here (their time is charged
        to the method). After the last phase :meth:`memory_bytes` must be within
        :attr:`budget_bytes`.
        """

    def phase_state(self) -> PhaseState:
        """What a checkpoint holds besides :meth:`state_dict`: the parameters' ``requires_grad``
        flags and the :attr:`resume_attrs` (JSON and tensors, no pickle)."""
        return capture_phase_state(self, self.resume_attrs)

    def restore_phase(
        self, index: int, state_dict: Mapping[str, torch.Tensor], state: PhaseState
    ) -> None:
        """Rebuild the table as a checkpoint saw it inside phase ``index`` (0-based), without
        rerunning the phases before it: parameters and buffers take the saved shapes (so a
        phase end that resized or dropped them needs no hook), ``state_dict`` loads, then
        the ``requires_grad`` flags and :attr:`resume_attrs` of :meth:`phase_state` are set.

        The trainer calls it before :meth:`start_phase` of the resumed phase (so that hook
        sees the structure the earlier phases fixed) and again after it (so what
        ``start_phase`` resets, e.g. a schedule's step, is the checkpoint's). A table whose
        phase ends leave other state overrides this (or lists it in :attr:`resume_attrs`).
        """
        restore_phase_state(self, state_dict, state, self._device())

    def describe(self) -> dict[str, object]:
        """The hyper-parameters the budget resolved to (recorded by the benchmark)."""
        return {}

    # --- export ---------------------------------------------------------------
    def export(self, path: str | os.PathLike[str]) -> Path:
        """Write the deployable form to one safetensors file; read it with
        :func:`~embedlab.tables.load_exported`.

        Raises:
            ValueError: a phase that fixes the structure has not ended yet (the message
                names it), or a weight is not finite.
        """
        from embedlab.tables._export import export_table

        return export_table(self, path)

    def _pending_phase(self) -> str | None:
        """The phase that must end before the table is in its deployable form (None: it is)."""
        return None

    def _export_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The deployable tensors at their storage dtypes, and JSON structure to read them.

        ``"state"``: the persistent state (parameters and persistent buffers), for tables
        whose state is already their deployable form; else the :attr:`export_format` hook.
        """
        if self.export_format != "state":
            from embedlab.tables._export_methods import HOOKS

            return HOOKS[self.export_format][0](self)
        return {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, {}

    @classmethod
    def _from_export(
        cls, config: ExportConfig, tensors: Mapping[str, torch.Tensor], check: ExportCheck
    ) -> nn.Module:
        """The inference module of :meth:`_export_tensors`' output: ``forward(ids)`` with
        int64 ids ``(batch, n_fields)``. ``"state"``: this class rebuilt, its state loaded."""
        if cls.export_format != "state":
            from embedlab.tables._export_methods import HOOKS

            return HOOKS[cls.export_format][1](cls, config, tensors, check)
        table = cls(
            config.fields,
            config.dim,
            compression=config.compression,
            seed=config.seed,
            **config.hyper,
        )
        expected = table.state_dict()
        if set(tensors) != set(expected):  # the file's per-dtype blobs, in state order
            from embedlab.tables._export_util import DTYPE_NAMES, split_blobs

            layout = [[k, DTYPE_NAMES[v.dtype], list(v.shape)] for k, v in expected.items()]
            tensors = split_blobs(tensors, layout, check)
        check.same_shapes(tensors, expected)
        table.load_state_dict(dict(tensors))
        return table.set_validation(False)

    def _device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def extra_repr(self) -> str:
        return (
            f"n_fields={self.n_fields}, dim={self.dim}, compression={self.compression:g}, "
            f"memory_bytes={self.memory_bytes()}"
        )
