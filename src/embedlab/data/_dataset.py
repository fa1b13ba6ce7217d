"""In-memory columnar CTR data: ids, labels and field specs as numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from embedlab._validation import check_finite, check_nonempty
from embedlab.fields import Field

__all__ = ["CTRDataset", "CTRSplits"]


@dataclass(frozen=True)
class CTRDataset:
    """Click data: one row per impression.

    Args:
        ids: ``(n, n_fields)`` int64, local ids, column ``j`` in ``[0, fields[j].cardinality)``.
        labels: ``(n,)`` float32 in {0, 1}.
        fields: one :class:`Field` per column of ``ids``.
        dense: optional ``(n, n_dense)`` float32 numeric features.
        name: a short name for reports.
        oracle: optional ``(n,)`` float32 true click probabilities (synthetic data only),
            so the best achievable AUC is known.
        history: optional ``(n, max_len)`` int64 behaviour sequence per row: ids of field
            ``history_field`` (e.g. the movies the user rated before), oldest first,
            right-padded with ``-1``. A row may have an empty history (all ``-1``).
        history_field: the column of ``ids`` whose id space the history items share;
            required with ``history``.
        groups: optional ``(n,)`` int64 group of each row (e.g. the user) for gAUC.
    """

    ids: np.ndarray
    labels: np.ndarray
    fields: tuple[Field, ...]
    dense: np.ndarray | None = None
    name: str = "dataset"
    oracle: np.ndarray | None = field(default=None, repr=False)
    history: np.ndarray | None = field(default=None, repr=False)
    history_field: int | None = None
    groups: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))
        ids = np.asarray(self.ids)
        if ids.ndim != 2:
            raise ValueError(f"ids must have shape (n, n_fields), got {ids.shape}")
        if ids.dtype.kind not in "iu":
            raise TypeError(f"ids must be an integer array, got dtype {ids.dtype}")
        n = ids.shape[0]
        check_nonempty(f"dataset {self.name!r}", n)
        if ids.shape[1] != len(self.fields):
            raise ValueError(
                f"ids must have one column per field ({len(self.fields)}), got {ids.shape[1]}"
            )
        labels = np.asarray(self.labels, dtype=np.float32)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
        check_finite("labels", labels)
        if not np.isin(labels, (0.0, 1.0)).all():
            bad = labels[~np.isin(labels, (0.0, 1.0))][0]
            raise ValueError(f"labels must be 0 or 1, got {bad}")
        if ids.min() < 0:
            raise ValueError(f"ids must be >= 0, got {ids.min()}")
        card = np.array([f.cardinality for f in self.fields])
        over = ids >= card
        if over.any():
            row, col = np.argwhere(over)[0]
            raise ValueError(
                f"ids of field {self.fields[col].name!r} must be in "
                f"[0, {card[col]}), got {ids[row, col]} at row {row}"
            )
        object.__setattr__(self, "ids", ids.astype(np.int64, copy=False))
        object.__setattr__(self, "labels", labels)
        if self.dense is not None:
            dense = np.asarray(self.dense, dtype=np.float32)
            if dense.ndim != 2 or dense.shape[0] != n:
                raise ValueError(f"dense must have shape ({n}, n_dense), got {dense.shape}")
            check_finite("dense", dense)
            object.__setattr__(self, "dense", dense)
        if self.oracle is not None:
            object.__setattr__(self, "oracle", np.asarray(self.oracle, dtype=np.float32))
        self._check_history(n)
        if self.groups is not None:
            groups = np.asarray(self.groups)
            if groups.shape != (n,) or groups.dtype.kind not in "iu":
                raise ValueError(
                    f"groups must be an integer array of shape ({n},), "
                    f"got {groups.dtype} {groups.shape}"
                )
            object.__setattr__(self, "groups", groups.astype(np.int64, copy=False))

    def _check_history(self, n: int) -> None:
        if self.history is None:
            if self.history_field is not None:
                raise ValueError("history_field must be None when history is None")
            return
        hist = np.asarray(self.history)
        if hist.ndim != 2 or hist.shape[0] != n or hist.dtype.kind not in "iu":
            raise ValueError(
                f"history must be an integer array of shape ({n}, max_len), "
                f"got {hist.dtype} {hist.shape}"
            )
        hf = self.history_field
        if not isinstance(hf, int) or not 0 <= hf < len(self.fields):
            raise ValueError(
                f"history_field must be a column index in [0, {len(self.fields)}), got {hf!r}"
            )
        card = self.fields[hf].cardinality
        if hist.size and (hist.min() < -1 or hist.max() >= card):
            bad = hist[(hist < -1) | (hist >= card)][0]
            raise ValueError(
                f"history ids must be -1 (padding) or in [0, {card}) "
                f"(field {self.fields[hf].name!r}), got {bad}"
            )
        object.__setattr__(self, "history", hist.astype(np.int64, copy=False))

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def n_fields(self) -> int:
        """Number of categorical fields (columns of ``ids``)."""
        return len(self.fields)

    @property
    def positive_rate(self) -> float:
        """Share of rows labelled 1 (the mean of ``labels``)."""
        return float(self.labels.mean())

    def subset(self, index: np.ndarray, name: str | None = None) -> CTRDataset:
        """Rows ``index`` (an int array or boolean mask) as a new dataset with the same fields."""
        return CTRDataset(
            ids=self.ids[index],
            labels=self.labels[index],
            fields=self.fields,
            dense=None if self.dense is None else self.dense[index],
            name=name or self.name,
            oracle=None if self.oracle is None else self.oracle[index],
            history=None if self.history is None else self.history[index],
            history_field=self.history_field,
            groups=None if self.groups is None else self.groups[index],
        )

    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), *, seed: int = 0) -> CTRSplits:
        """Deterministic random split into train / valid / test by ``fractions`` (sum 1)."""
        if len(fractions) != 3 or any(f <= 0 for f in fractions):
            raise ValueError(f"fractions must be three positive numbers, got {tuple(fractions)}")
        if abs(sum(fractions) - 1.0) > 1e-6:
            raise ValueError(f"fractions must sum to 1, got {sum(fractions):g}")
        n = len(self)
        perm = np.random.default_rng(seed).permutation(n)
        n_train = round(float(fractions[0]) * n)
        n_valid = round(float(fractions[1]) * n)
        parts = np.split(perm, [n_train, n_train + n_valid])
        return CTRSplits(
            train=self.subset(np.sort(parts[0])),
            valid=self.subset(np.sort(parts[1])),
            test=self.subset(np.sort(parts[2])),
        )

    def split_two(self, fraction: float, *, seed: int = 0) -> tuple[CTRDataset, CTRDataset]:
        """Deterministic random split into two parts, the first with ``fraction`` of the rows."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        perm = np.random.default_rng(seed).permutation(len(self))
        cut = round(float(fraction) * len(self))
        return self.subset(np.sort(perm[:cut])), self.subset(np.sort(perm[cut:]))


@dataclass(frozen=True)
class CTRSplits:
    """Train / valid / test parts of one dataset, sharing the same fields."""

    train: CTRDataset
    valid: CTRDataset
    test: CTRDataset

    def __post_init__(self) -> None:
        if not (self.train.fields == self.valid.fields == self.test.fields):
            raise ValueError("train, valid and test must share the same fields")

    @property
    def fields(self) -> tuple[Field, ...]:
        """The fields, shared by the three parts."""
        return self.train.fields

    @property
    def name(self) -> str:
        """The dataset's name (that of ``train``)."""
        return self.train.name
