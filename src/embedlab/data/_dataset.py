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
            With ``history_side_fields`` it is ``(n, max_len, 1 + len(history_side_fields))``:
            channel 0 the ids of ``history_field``, channel ``1 + i`` the ids of field
            ``history_side_fields[i]`` of the same item (e.g. each movie's genre), with
            the pads of every channel at the same places.
        history_field: the column of ``ids`` whose id space the history items share;
            required with ``history``.
        history_side_fields: the columns of ``ids`` whose id spaces the further channels
            of a 3-d ``history`` share (e.g. the item's category); ``()``: a 2-d history.
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
    history_side_fields: tuple[int, ...] = ()

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
        side = self.history_side_fields
        if isinstance(side, (str, bytes)) or not isinstance(side, (tuple, list)):
            raise TypeError(f"history_side_fields must be a tuple of ints, got {side!r}")
        object.__setattr__(self, "history_side_fields", tuple(side))
        if self.history is None:
            if self.history_field is not None:
                raise ValueError("history_field must be None when history is None")
            if side:
                raise ValueError(f"history_side_fields must be () when history is None, got {side}")
            return
        hist = np.asarray(self.history)
        shape = f"({n}, max_len)" if not side else f"({n}, max_len, {1 + len(side)})"
        ndim = 2 if not side else 3
        if (
            hist.ndim != ndim
            or hist.shape[0] != n
            or hist.dtype.kind not in "iu"
            or (side and hist.shape[2] != 1 + len(side))
        ):
            raise ValueError(
                f"history must be an integer array of shape {shape}, got {hist.dtype} {hist.shape}"
            )
        hf = self.history_field
        columns: list[int] = []
        for i, c in enumerate([hf, *side]):
            if not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < len(self.fields):
                what = "history_field" if i == 0 else "history_side_fields"
                raise ValueError(
                    f"{what} must be a column index in [0, {len(self.fields)}), got {c!r}"
                )
            columns.append(c)
        if len(set(columns)) != len(columns):
            raise ValueError(
                f"history_side_fields must differ from each other and from history_field "
                f"({hf}), got {side}"
            )
        channels = [hist] if not side else [hist[..., i] for i in range(hist.shape[2])]
        for c, chan in zip(columns, channels, strict=True):
            card = self.fields[c].cardinality
            if chan.size and (chan.min() < -1 or chan.max() >= card):
                bad = chan[(chan < -1) | (chan >= card)][0]
                raise ValueError(
                    f"history ids must be -1 (padding) or in [0, {card}) "
                    f"(field {self.fields[c].name!r}), got {bad}"
                )
        if side and ((hist < 0) != (hist[..., :1] < 0)).any():
            raise ValueError(
                "history channels must be padded (-1) at the same places: an item and its "
                "side fields are present or absent together"
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
            history_side_fields=self.history_side_fields,
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
