"""The clusterer protocol (:class:`Clusterer`) and the input checks every clusterer shares."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from embedlab._validation import check_finite, check_int, check_int_in_range, is_tensor

__all__ = ["Clusterer", "as_samples", "check_batch_size"]


def as_samples(name: str, value: Any, *, ndim: tuple[int, ...] = (2, 4)) -> np.ndarray:
    """Samples ``(n, dim)`` or images ``(n, channels, height, width)`` as finite float32 numpy."""
    if is_tensor(value):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array, got {type(value).__name__}") from None
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim not in ndim:
        shapes = {2: "(n, dim)", 4: "(n, channels, height, width)"}
        raise ValueError(
            f"{name} must have shape {' or '.join(shapes[d] for d in ndim)}, got {arr.shape}"
        )
    if arr.shape[0] == 0 or any(s == 0 for s in arr.shape[1:]):
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    check_finite(name, arr)
    return np.ascontiguousarray(arr, dtype=np.float32)


def check_batch_size(batch_size: Any, n: int) -> int:
    """A minibatch no larger than the data set (a smaller data set is an error, not a
    silently shorter batch: the batch statistics of a method depend on it)."""
    return check_int_in_range("batch_size", batch_size, 1, n, why=" (the number of samples)")


class Clusterer:
    """Base class of every clusterer: a scikit-learn-like estimator.

    ``fit(x)`` clusters ``x`` (``(n, dim)`` vectors, or ``(n, channels, height, width)``
    images where a method takes them) into ``n_clusters`` groups and stores the labels
    ``labels_ (n,)`` (int64, values in ``[0, n_clusters)``); ``fit_predict(x)`` returns
    them. ``predict(x)`` assigns new samples where the method defines it (k-means, DEPICT)
    and raises ``NotImplementedError`` otherwise. The same ``seed`` gives the same labels.

    Subclasses implement ``_fit(x) -> labels`` (and ``_predict``); hyper-parameters are
    keyword-only and validated on construction.
    """

    name: ClassVar[str] = ""
    #: sample layouts ``x`` may have: 2 for ``(n, dim)``, 4 for images
    input_ndims: ClassVar[tuple[int, ...]] = (2,)
    #: True where ``fit(x, y)`` also takes partial labels ``y (n,)`` (-1: unlabelled)
    semi_supervised: ClassVar[bool] = False

    def __init__(self, *, n_clusters: int = 8, seed: int = 0) -> None:
        self.n_clusters = check_int("n_clusters", n_clusters, min_value=2)
        self.seed = check_int("seed", seed, min_value=0)
        self.labels_: np.ndarray | None = None

    def _check(self, x: Any) -> np.ndarray:
        arr = as_samples("X", x, ndim=self.input_ndims)
        check_int_in_range(
            "n_clusters", self.n_clusters, 2, arr.shape[0], why=" (the number of samples)"
        )
        return arr

    def fit(self, x: Any) -> Clusterer:
        """Cluster ``x``; the labels are in ``labels_``. Returns ``self``."""
        labels = self._fit(self._check(x))
        self.labels_ = np.asarray(labels, dtype=np.int64)
        return self

    def fit_predict(self, x: Any) -> np.ndarray:
        """Cluster ``x`` and return ``labels_ (n,)``."""
        self.fit(x)
        assert self.labels_ is not None
        return self.labels_

    def predict(self, x: Any) -> np.ndarray:
        """Cluster ids ``(n,)`` of new samples (after :meth:`fit`)."""
        if self.labels_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(X) first")
        return np.asarray(self._predict(as_samples("X", x, ndim=self.input_ndims)), np.int64)

    def _fit(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not predict new samples")

    def hyper_parameters(self) -> dict[str, Any]:
        """The scalar hyper-parameters (for benchmark records)."""
        return {
            k: v
            for k, v in vars(self).items()
            if not k.startswith("_") and not k.endswith("_") and isinstance(v, (int, float, str))
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper_parameters().items())
        return f"{type(self).__name__}({args})"
