"""Labelled dense data (images or vectors with class labels) for metric learning and analysis."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedlab._validation import check_finite, check_nonempty

__all__ = ["LabeledData"]


@dataclass(frozen=True)
class LabeledData:
    """Samples with integer class labels.

    Args:
        x: ``(n, *shape)`` float32 features, e.g. ``(n, 1, 28, 28)`` images in [0, 1]
            or ``(n, d)`` vectors.
        y: ``(n,)`` int64 class labels.
        name: a short name for reports.
    """

    x: np.ndarray
    y: np.ndarray
    name: str = "data"

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=np.float32)
        y = np.asarray(self.y)
        check_nonempty(f"dataset {self.name!r}", x.shape[0] if x.ndim else 0)
        if y.shape != (x.shape[0],):
            raise ValueError(f"y must have shape ({x.shape[0]},), got {y.shape}")
        if y.dtype.kind not in "iu":
            raise TypeError(f"y must hold integer class labels, got dtype {y.dtype}")
        check_finite("x", x)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y.astype(np.int64, copy=False))

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def classes(self) -> np.ndarray:
        """The distinct class labels, sorted (``np.unique(y)``)."""
        return np.unique(self.y)

    def select_classes(
        self, classes: list[int] | tuple[int, ...], name: str | None = None
    ) -> LabeledData:
        """Only the samples whose label is in ``classes`` (e.g. train on 0-4, test on 5-9)."""
        mask = np.isin(self.y, np.asarray(classes))
        if not mask.any():
            raise ValueError(f"classes {list(classes)} select no samples of {self.name!r}")
        return LabeledData(self.x[mask], self.y[mask], name=name or self.name)

    def flat(self) -> np.ndarray:
        """``(n, prod(shape))`` view of the features."""
        return self.x.reshape(len(self), -1)
