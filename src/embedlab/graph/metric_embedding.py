"""Embedding finite metrics (e.g. shortest-path metrics of graphs): distortion and a fitter.

Used to compare a neural snowflake (:class:`~embedlab.losses.NeuralSnowflake`) with plain
Euclidean space, as in the synthetic experiments of Borde & Kratsios (ICLR 2024).

- :func:`distortion` of a map between finite (quasi-)metric spaces: ``max(E/T) / min(E/T)``
  over the pairs of distinct points (``1`` = isometric up to scale);
- :func:`shortest_path_metric` of a connected graph;
- :func:`fit_metric_embedding` optimises point positions (and the snowflake's parameters) to
  minimise a smooth version of the log-distortion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.sparse.csgraph import shortest_path

from embedlab._validation import (
    check_adjacency,
    check_bool,
    check_choice,
    check_int,
    check_positive_float,
)
from embedlab.losses.snowflake import NeuralSnowflake

__all__ = [
    "GEOMETRIES",
    "MetricEmbeddingResult",
    "check_metric_matrix",
    "distortion",
    "fit_metric_embedding",
    "shortest_path_metric",
]

GEOMETRIES = ("euclidean", "snowflake", "quasi_snowflake")


def check_metric_matrix(
    name: str, d: Any, *, triangle: bool = True, rtol: float = 1e-9
) -> np.ndarray:
    """``d`` as a float64 ``(n, n)`` (quasi-)metric matrix, or a ValueError naming ``name``.

    Checks: square, ``n >= 2``, finite, symmetric, zero diagonal, positive off the diagonal and,
    with ``triangle``, ``d[i, k] <= d[i, j] + d[j, k]`` up to ``rtol * max(d)``.
    """
    if isinstance(d, torch.Tensor):
        d = d.detach().cpu().numpy()
    arr = np.asarray(d, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix, got shape {arr.shape}")
    n = arr.shape[0]
    if n < 2:
        raise ValueError(f"{name} must hold at least 2 points, got {n}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be finite, got {arr[i, j]} at ({i}, {j})")
    scale = float(np.abs(arr).max())
    tol = rtol * max(scale, 1.0)
    asym = np.abs(arr - arr.T)
    if asym.max() > tol:
        i, j = (int(v) for v in np.unravel_index(asym.argmax(), asym.shape))
        raise ValueError(
            f"{name} must be symmetric (a metric), got {name}[{i}, {j}] = {arr[i, j]:g} "
            f"but {name}[{j}, {i}] = {arr[j, i]:g}"
        )
    diag = np.abs(np.diagonal(arr))
    if diag.max() > tol:
        i = int(diag.argmax())
        raise ValueError(f"{name} must have a zero diagonal (a metric), got {arr[i, i]:g} at {i}")
    off = arr + np.diag(np.full(n, np.inf))
    if off.min() <= 0:
        i, j = (int(v) for v in np.unravel_index(off.argmin(), off.shape))
        raise ValueError(
            f"{name} must be positive between distinct points (a metric), got {arr[i, j]:g} "
            f"at ({i}, {j})"
        )
    if triangle:
        for j in range(n):
            excess = arr - (arr[:, j][:, None] + arr[j, :][None, :])
            if excess.max() > tol:
                i, k = (int(v) for v in np.unravel_index(excess.argmax(), excess.shape))
                raise ValueError(
                    f"{name} must satisfy the triangle inequality (a metric), got "
                    f"d({i},{k}) = {arr[i, k]:g} > d({i},{j}) + d({j},{k}) = "
                    f"{arr[i, j] + arr[j, k]:g}"
                )
    return arr


def distortion(d_true: Any, d_emb: Any, *, emb_triangle: bool = True) -> float:
    """Distortion ``max_{i != j} r_ij / min_{i != j} r_ij`` with ``r = d_emb / d_true``.

    Args:
        d_true: ``(n, n)`` metric (checked: finite, symmetric, zero diagonal, positive off it,
            triangle inequality).
        d_emb: ``(n, n)`` distances of the embedded points (same checks).
        emb_triangle: also check the triangle inequality on ``d_emb``; pass False for a
            quasi-metric embedding space.

    Returns:
        The distortion, ``>= 1`` (``1``: an isometry up to a global scale).

    Example:
        >>> import numpy as np
        >>> d = np.array([[0.0, 1, 2], [1, 0, 1], [2, 1, 0]])
        >>> flat = np.array([[0.0, 1, 1], [1, 0, 1], [1, 1, 0]])
        >>> distortion(d, 3 * d), distortion(d, flat)
        (1.0, 2.0)
    """
    emb_triangle = check_bool("emb_triangle", emb_triangle)
    t = check_metric_matrix("d_true", d_true)
    e = check_metric_matrix("d_emb", d_emb, triangle=emb_triangle)
    if e.shape != t.shape:
        raise ValueError(f"d_emb must have the shape of d_true {t.shape}, got {e.shape}")
    iu = np.triu_indices(t.shape[0], 1)
    ratio = e[iu] / t[iu]
    return float(ratio.max() / ratio.min())


def shortest_path_metric(adj: Any) -> np.ndarray:
    """``(n, n)`` float64 shortest-path distances of a connected graph (edge weights = lengths)."""
    mat = check_adjacency("adj", adj)
    if mat.shape[0] < 2:
        raise ValueError(f"adj must have at least 2 nodes, got {mat.shape[0]}")
    d = np.asarray(shortest_path(mat, directed=False), dtype=np.float64)
    if not np.isfinite(d).all():
        raise ValueError("adj must be a connected graph: some nodes are unreachable")
    return d


@dataclass(frozen=True)
class MetricEmbeddingResult:
    """Outcome of :func:`fit_metric_embedding`.

    Attributes:
        points: ``(n, dim)`` float64 positions.
        distances: ``(n, n)`` embedded distances.
        distortion: :func:`distortion` of ``distances`` against the target.
        geometry: ``euclidean``, ``snowflake`` or ``quasi_snowflake``.
        snowflake: the trained snowflake (``None`` for Euclidean).
    """

    points: np.ndarray
    distances: np.ndarray
    distortion: float
    geometry: str
    snowflake: NeuralSnowflake | None


def fit_metric_embedding(
    d_true: Any,
    dim: int,
    *,
    geometry: str = "snowflake",
    steps: int = 2000,
    lr: float = 0.02,
    temperature: float = 30.0,
    seed: int = 0,
) -> MetricEmbeddingResult:
    """Place ``n`` points in ``R^dim`` so that their distances match ``d_true`` up to scale.

    The points start at classical MDS coordinates (plus a little noise). The loss is the
    variance of ``log(d_emb / d_true)`` plus a smooth maximum (temperature ``temperature``) of
    the log-ratios minus a smooth minimum (a differentiable log-distortion). With a snowflake
    geometry its parameters are trained with the points (Adam, ``lr``).

    Args:
        d_true: ``(n, n)`` target metric.
        dim: embedding dimension.
        geometry: ``euclidean``, ``snowflake`` (metric) or ``quasi_snowflake``.
        steps: optimisation steps.
        lr: Adam learning rate.
        temperature: sharpness of the smooth max / min.
        seed: seed of the initial noise.
    """
    target = check_metric_matrix("d_true", d_true)
    dim = check_int("dim", dim, min_value=1)
    geometry = check_choice("geometry", geometry, GEOMETRIES)
    steps = check_int("steps", steps, min_value=1)
    lr = check_positive_float("lr", lr)
    temperature = check_positive_float("temperature", temperature)
    seed = check_int("seed", seed, min_value=0)
    n = target.shape[0]
    target = target / target[np.triu_indices(n, 1)].mean()
    gen = torch.Generator().manual_seed(seed)
    x = torch.nn.Parameter(
        torch.from_numpy(_mds(target, dim))
        + 0.01 * torch.randn(n, dim, generator=gen, dtype=torch.float64)
    )
    snow: NeuralSnowflake | None = None
    params: list[torch.nn.Parameter] = [x]
    if geometry != "euclidean":
        snow = NeuralSnowflake(dim, quasi=geometry == "quasi_snowflake").double()
        params += list(snow.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    iu = torch.triu_indices(n, n, 1)
    log_t = torch.log(torch.from_numpy(target)[iu[0], iu[1]])

    def emb_distances() -> torch.Tensor:
        if snow is None:
            return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
        return snow.pairwise(x)

    for _ in range(steps):
        opt.zero_grad()
        r = torch.log(emb_distances()[iu[0], iu[1]].clamp_min(1e-12)) - log_t
        smooth = (
            torch.logsumexp(temperature * r, 0) + torch.logsumexp(-temperature * r, 0)
        ) / temperature
        loss = r.var() + smooth
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    with torch.no_grad():
        dist = emb_distances().numpy().copy()
    np.fill_diagonal(dist, 0.0)
    value = distortion(target, dist, emb_triangle=geometry != "quasi_snowflake")
    return MetricEmbeddingResult(
        points=x.detach().numpy().copy(),
        distances=dist,
        distortion=value,
        geometry=geometry,
        snowflake=snow,
    )


def _mds(d: np.ndarray, dim: int) -> np.ndarray:
    """Classical MDS coordinates of ``d`` (zero-padded when ``dim`` exceeds the rank used)."""
    n = d.shape[0]
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (d * d) @ j
    vals, vecs = np.linalg.eigh(b)
    order = np.argsort(vals)[::-1][: min(dim, n)]
    coords = vecs[:, order] * np.sqrt(np.clip(vals[order], 0.0, None))
    out = np.zeros((n, dim))
    out[:, : coords.shape[1]] = coords
    return out
