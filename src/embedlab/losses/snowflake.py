"""Neural snowflake: a trainable (quasi-)metric ``f(|w o (x - y)|)`` usable as any loss's distance.

Borde & Kratsios, "Neural Snowflakes: Universal Latent Graph Inference via Trainable Latent
Geometries" (ICLR 2024). A neural snowflake is a small network ``f: [0, inf) -> [0, inf)``
applied to a distance; when ``f`` is increasing, concave and ``f(0) = 0`` (a "snowflake"
transform such as ``t ** s`` with ``s <= 1``), ``f(d)`` is again a metric, and with a final
power ``p > 1`` it is a quasi-metric (relaxed triangle inequality).

The construction used here (our reading of the paper, kept provably metric):

- ``t = |w o (x - y)|_2`` with learned per-coordinate weights ``w > 0`` (mean 1);
- ``depth`` layers ``u -> B [1 - exp(-A u), log(1 + A u), (A u + eps)^s - eps^s]`` with entry-wise
  positive ``A``, ``B`` and exponents ``s`` in ``(0, 1)``: each output is increasing, concave
  and zero at zero in ``u >= 0``, and so is their composition;
- ``g(t) = <b, u_depth> + c t`` with ``b, c > 0``, then ``f = (g + eps)^p - eps^p``, divided by
  its value at ``t = 1`` (so the output scale is fixed and a margin keeps its meaning).

With ``quasi=False`` the final power ``p`` is in ``(0, 1)``: ``f`` is concave, so subadditive,
and ``f(t)`` is a metric. With ``quasi=True``, ``p > 0`` is free: ``f(t)`` is a quasi-metric,
``rho(x, z) <= K (rho(x, y) + rho(y, z))`` with ``K = max(1, 2 ** (p - 1))``
(:meth:`NeuralSnowflake.quasi_constant`). All positive quantities are stored as logarithms (or
logits), so training cannot make them non-positive.

Because ``f`` is increasing, nearest neighbours under the snowflake are those of the weighted
Euclidean distance ``t``: a kNN graph depends on ``w`` only, its edge weights on ``f``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from embedlab._validation import check_bool, check_int, check_positive_float
from embedlab.losses.distances import Distance

__all__ = ["NeuralSnowflake"]

_EPS = 1e-6


def _check_power(power: float, quasi: bool) -> float:
    p = check_positive_float("power", power)
    if not quasi and p >= 1.0:
        raise ValueError(
            f"power must be in (0, 1) for the metric snowflake (quasi=False), got {power}; "
            "use quasi=True for a quasi-metric with power >= 1"
        )
    return p


class NeuralSnowflake(Distance, nn.Module):
    """Trainable snowflake (quasi-)metric ``f(|w o (x - y)|)``; smaller is closer.

    A :class:`Distance` and a ``torch.nn.Module``: a loss that stores it as ``self.distance``
    registers its parameters, so the optimiser of :class:`~embedlab.training.MetricTrainer`
    (encoder + loss parameters) trains them.

    Args:
        dim: embedding dimension (one positive weight per coordinate).
        width: units per snowflake layer.
        depth: number of snowflake layers.
        quasi: allow a final power ``>= 1`` (quasi-metric) instead of ``(0, 1)`` (metric).
        power: initial final power ``p`` (``(0, 1)`` for the metric, ``> 0`` for ``quasi``).
        exponent: initial inner exponent ``s`` of every unit, in ``(0, 1)``.
        scale: initial spread of the units' input scales ``A``: unit ``k`` of the first layer
            starts at ``scale * 2 ** (k - width / 2)`` (several scales at once), ``> 0``.
        normalize_embeddings: L2-normalise rows first (default False).

    Shapes:
        ``pairwise(x (n, dim), y (m, dim)) -> (n, m)``, ``pair(x (n, dim), y (n, dim)) -> (n,)``.

    Example:
        >>> import torch
        >>> from embedlab.losses import NeuralSnowflake, make_loss
        >>> loss = make_loss("triplet", distance=NeuralSnowflake(dim=8))
        >>> sum(p.numel() for p in loss.parameters()) > 0
        True
        >>> d = NeuralSnowflake(dim=2).pairwise(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
        >>> round(float(d[0, 1]), 4), float(d[0, 0])
        (1.0, 0.0)
    """

    is_inverted = False

    def __init__(
        self,
        dim: int,
        *,
        width: int = 8,
        depth: int = 2,
        quasi: bool = False,
        power: float | None = None,
        exponent: float = 0.5,
        scale: float = 1.0,
        normalize_embeddings: bool = False,
    ) -> None:
        nn.Module.__init__(self)
        Distance.__init__(self, normalize_embeddings=normalize_embeddings)
        self.dim = check_int("dim", dim, min_value=1)
        self.width = check_int("width", width, min_value=1)
        self.depth = check_int("depth", depth, min_value=1)
        self.quasi = check_bool("quasi", quasi)
        p0 = _check_power((1.0 if quasi else 0.9) if power is None else power, self.quasi)
        s0 = check_positive_float("exponent", exponent)
        if s0 >= 1.0:
            raise ValueError(f"exponent must be in (0, 1), got {exponent}")
        scale = check_positive_float("scale", scale)
        w = self.width
        self.coord_logits = nn.Parameter(torch.zeros(self.dim))
        spread = torch.tensor([math.log(scale) + (k - w / 2) * math.log(2.0) for k in range(w)])
        self.log_a = nn.ParameterList(
            [nn.Parameter(spread[:, None].clone())]
            + [nn.Parameter(torch.full((w, w), -math.log(w))) for _ in range(self.depth - 1)]
        )
        self.log_b = nn.ParameterList(
            [nn.Parameter(torch.full((w, 3 * w), -math.log(3 * w))) for _ in range(self.depth)]
        )
        logit_s = math.log(s0 / (1.0 - s0))
        self.exponent_logits = nn.Parameter(torch.full((self.depth, w), logit_s))
        self.log_out = nn.Parameter(torch.full((w,), -math.log(w)))
        self.log_linear = nn.Parameter(torch.tensor(math.log(0.1)))
        raw_p = math.log(p0) if self.quasi else math.log(p0 / (1.0 - p0))
        self.power_raw = nn.Parameter(torch.tensor(raw_p))

    # -- learned quantities ---------------------------------------------------------------
    def coordinate_weights(self) -> torch.Tensor:
        """``w``: ``(dim,)`` positive per-coordinate weights with mean 1."""
        return self.dim * torch.softmax(self.coord_logits, dim=0)

    def final_power(self) -> torch.Tensor:
        """``p``: in ``(0, 1)`` for the metric, ``> 0`` for the quasi-metric."""
        return torch.exp(self.power_raw) if self.quasi else torch.sigmoid(self.power_raw)

    def quasi_constant(self) -> float:
        """``K`` of the relaxed triangle inequality (1 for the metric snowflake)."""
        return max(1.0, math.pow(2.0, float(self.final_power().detach()) - 1.0))

    # -- the scalar map f -------------------------------------------------------------------
    def _g(self, t: torch.Tensor) -> torch.Tensor:
        dtype = t.dtype
        u = t.unsqueeze(-1)
        exps = torch.sigmoid(self.exponent_logits).to(dtype)
        for j in range(self.depth):
            z = u @ torch.exp(self.log_a[j]).to(dtype).T
            s = exps[j]
            feats = torch.cat([-torch.expm1(-z), torch.log1p(z), (z + _EPS) ** s - _EPS**s], dim=-1)
            u = feats @ torch.exp(self.log_b[j]).to(dtype).T
        out = u @ torch.exp(self.log_out).to(dtype) + torch.exp(self.log_linear).to(dtype) * t
        p = self.final_power().to(dtype)
        return (out + _EPS) ** p - _EPS**p

    def transform(self, t: torch.Tensor) -> torch.Tensor:
        """``f(t)`` for non-negative distances ``t`` of any shape (``f(1) = 1``)."""
        one = torch.ones((), dtype=t.dtype, device=t.device)
        return self._g(t) / self._g(one)

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        """``w o x``: Euclidean distances of these rows are the ``t`` fed to ``f``."""
        return x * self.coordinate_weights().to(device=x.device, dtype=x.dtype)

    def _check_dim(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"embeddings must have shape (n, {self.dim}) for NeuralSnowflake(dim={self.dim}), "
                f"got {tuple(x.shape)}"
            )

    def _pairwise(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check_dim(x)
        self._check_dim(y)
        t = torch.cdist(self.scaled(x), self.scaled(y), compute_mode="donot_use_mm_for_euclid_dist")
        return self.transform(t)

    def _pair(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check_dim(x)
        self._check_dim(y)
        t = torch.linalg.vector_norm(self.scaled(x - y), dim=-1)
        return self.transform(t)

    def __repr__(self) -> str:
        return (
            f"NeuralSnowflake(dim={self.dim}, width={self.width}, depth={self.depth}, "
            f"quasi={self.quasi}, normalize_embeddings={self.normalize_embeddings})"
        )
