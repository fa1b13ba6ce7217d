"""The embedding-table protocol and the budget arithmetic every method shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from embedlab._validation import (
    check_compression,
    check_ids_in_range,
    check_ids_tensor,
    check_int,
)
from embedlab.fields import Field
from embedlab.tables._phases import PhaseContext

__all__ = ["FLOAT32_BYTES", "EmbeddingTable", "full_table_bytes"]

FLOAT32_BYTES = 4


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

    # --- budget -------------------------------------------------------------
    @property
    def n_fields(self) -> int:
        return len(self.fields)

    @property
    def cardinalities(self) -> list[int]:
        return [f.cardinality for f in self.fields]

    @property
    def full_bytes(self) -> int:
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

    def describe(self) -> dict[str, object]:
        """The hyper-parameters the budget resolved to (recorded by the benchmark)."""
        return {}

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
