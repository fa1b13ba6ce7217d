"""Support of the streamed trainer: a phase context that loads rows only when asked, and
the check that a model can train on a batch source."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from embedlab.data import CTRDataset
from embedlab.models import CTRModel
from embedlab.tables import PhaseContext
from embedlab.training._stream import BatchSource

__all__ = ["LazyPhaseContext", "check_source"]


class LazyPhaseContext(PhaseContext):
    """A :class:`PhaseContext` whose ``train`` / ``valid`` rows are read into memory only if
    a table's phase hook asks for them (most tables never do)."""

    def __init__(
        self,
        load: Callable[[str], CTRDataset],
        valid_split: str | None,
        **rest: Any,
    ) -> None:
        self._load, self._valid_split = load, valid_split
        self._cache: dict[str, CTRDataset] = {}
        super().__init__(train=None, valid=None, **rest)  # type: ignore[arg-type]

    def _get(self, split: str) -> CTRDataset:
        if split not in self._cache:
            self._cache[split] = self._load(split)
        return self._cache[split]

    @property  # type: ignore[override]
    def train(self) -> CTRDataset:
        return self._get("train")

    @train.setter
    def train(self, value: CTRDataset) -> None:
        pass  # the dataclass __init__ assigns it; the rows come from the source

    @property  # type: ignore[override]
    def valid(self) -> CTRDataset | None:
        return None if self._valid_split is None else self._get(self._valid_split)

    @valid.setter
    def valid(self, value: CTRDataset | None) -> None:
        pass


def check_source(model: CTRModel, source: BatchSource) -> None:
    """The model can train on ``source``: a CTR model, a :class:`BatchSource`, the same
    fields and numeric features, no behaviour history."""
    if not isinstance(model, CTRModel):
        raise TypeError(f"model must be a CTRModel, got {type(model).__name__}")
    if not isinstance(source, BatchSource):
        raise TypeError(
            "source must be a BatchSource (fields, n_dense, n_rows, iter_batches, "
            f"steps_per_epoch, to_memory), got {type(source).__name__}"
        )
    if tuple(source.fields) != tuple(model.table.fields):
        raise ValueError(
            f"source must have the model table's fields {list(model.table.fields)[:3]}..., "
            f"got {list(source.fields)[:3]}..."
        )
    if model.history_field is not None:
        raise ValueError("a streamed source carries no behaviour history; use fit()")
    if source.n_dense != model.n_dense:
        raise ValueError(
            f"source must have n_dense={model.n_dense} numeric features (as the model "
            f"was built), got {source.n_dense}"
        )
