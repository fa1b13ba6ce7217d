"""Distances and similarities between embeddings, with PML's ``is_inverted`` notion.

A *distance* is small for close points (``is_inverted = False``); a *similarity*
is large for close points (``is_inverted = True``). Losses read ``is_inverted``
so that each works with either kind, as in pytorch-metric-learning.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from embedlab._validation import check_choice, check_int, check_positive_float

__all__ = [
    "DISTANCES",
    "CosineSimilarity",
    "Distance",
    "DotProductSimilarity",
    "LpDistance",
    "make_distance",
]


class Distance:
    """Base class: ``pairwise(x, y) -> (n, m)`` and ``pair(x, y) -> (n,)``.

    float16 / bfloat16 inputs are computed in float32 (and the result is float32).

    Args:
        normalize_embeddings: L2-normalise the rows of ``x`` and ``y`` first.
    """

    is_inverted: ClassVar[bool] = False

    def __init__(self, *, normalize_embeddings: bool = True) -> None:
        self.normalize_embeddings = bool(normalize_embeddings)

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()  # torch.cdist has no half-precision kernel on CPU
        return F.normalize(x, dim=-1) if self.normalize_embeddings else x

    def pairwise(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """All pairs: ``x (n, dim)``, ``y (m, dim)`` (default ``x``) -> ``(n, m)``."""
        xx = self._prep(x)
        yy = xx if y is None else self._prep(y)
        return self._pairwise(xx, yy)

    def pair(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Row by row: ``x (n, dim)``, ``y (n, dim)`` -> ``(n,)``."""
        return self._pair(self._prep(x), self._prep(y))

    __call__ = pairwise

    def violation(self, ap: torch.Tensor, an: torch.Tensor) -> torch.Tensor:
        """How much the negative beats the positive: ``d_ap - d_an`` or ``s_an - s_ap``."""
        return an - ap if self.is_inverted else ap - an

    def as_distance(self, mat: torch.Tensor) -> torch.Tensor:
        """``mat`` turned so that smaller means closer (similarities are negated)."""
        return -mat if self.is_inverted else mat

    def _pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _pair(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(normalize_embeddings={self.normalize_embeddings})"


class CosineSimilarity(Distance):
    """Cosine similarity ``<x, y> / (|x| |y|)``; bigger is closer (``is_inverted = True``).

    Example:
        >>> import torch
        >>> CosineSimilarity().pairwise(torch.eye(2)).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """

    is_inverted = True

    def __init__(self) -> None:
        super().__init__(normalize_embeddings=True)

    def _pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x @ y.T

    def _pair(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x * y).sum(-1)


class DotProductSimilarity(Distance):
    """Inner product ``<x, y>`` of the raw embeddings; bigger is closer (``is_inverted = True``).

    Args:
        normalize_embeddings: normalise first (then equal to cosine). Default False.

    Example:
        >>> import torch
        >>> DotProductSimilarity().pair(torch.ones(1, 3), torch.ones(1, 3)).tolist()
        [3.0]
    """

    is_inverted = True

    def __init__(self, *, normalize_embeddings: bool = False) -> None:
        super().__init__(normalize_embeddings=normalize_embeddings)

    def _pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x @ y.T

    def _pair(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x * y).sum(-1)


class LpDistance(Distance):
    """Minkowski distance ``|x - y|_p ** power``; smaller is closer (``is_inverted = False``).

    ``p=2, power=2`` is the squared Euclidean distance of FaceNet, computed as
    ``|x|^2 + |y|^2 - 2 <x, y>`` (clamped at 0) with one matrix product.

    Args:
        p: the norm, ``>= 1``.
        power: 1 (distance) or 2 (squared distance).
        normalize_embeddings: L2-normalise rows first (default True).

    Example:
        >>> import torch
        >>> LpDistance(power=2, normalize_embeddings=False).pair(
        ...     torch.zeros(1, 2), torch.ones(1, 2)).tolist()
        [2.0]
    """

    is_inverted = False

    def __init__(self, *, p: float = 2, power: int = 1, normalize_embeddings: bool = True) -> None:
        super().__init__(normalize_embeddings=normalize_embeddings)
        self.p = check_positive_float("p", p, min_value=1.0, strict=False)
        self.power = check_int("power", power, min_value=1)
        if self.power > 2:
            raise ValueError(f"power must be 1 or 2, got {power}")

    def _pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.p == 2 and self.power == 2:
            sq = (x * x).sum(-1)[:, None] + (y * y).sum(-1)[None, :] - 2 * (x @ y.T)
            return sq.clamp_min(0)
        d = torch.cdist(x, y, p=self.p)
        return d * d if self.power == 2 else d

    def _pair(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        diff = x - y
        if self.p == 2 and self.power == 2:
            return (diff * diff).sum(-1)
        d: torch.Tensor = torch.linalg.vector_norm(diff, ord=self.p, dim=-1)
        return d * d if self.power == 2 else d

    def __repr__(self) -> str:
        return (
            f"LpDistance(p={self.p:g}, power={self.power}, "
            f"normalize_embeddings={self.normalize_embeddings})"
        )


DISTANCES: dict[str, Any] = {
    "cosine": CosineSimilarity,
    "dot": DotProductSimilarity,
    "l2": lambda: LpDistance(power=1),
    "squared_l2": lambda: LpDistance(power=2),
}


def make_distance(value: Distance | str | None, default: Distance) -> Distance:
    """A :class:`Distance` from an instance, a name (``cosine``, ``dot``, ``l2``,
    ``squared_l2``) or ``None`` (``default``)."""
    if value is None:
        return default
    if isinstance(value, Distance):
        return value
    name = check_choice("distance", value, DISTANCES)
    out: Distance = DISTANCES[name]()
    return out
