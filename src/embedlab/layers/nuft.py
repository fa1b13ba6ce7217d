"""Non-uniform Fourier transform (NUFT) of 2-D point sets and simplex meshes onto a grid.

Jiang et al., "Convolutional Neural Networks on non-uniform geometrical signals using
Euclidean spectral transformation" (ICLR 2019, the DDSL / NUFT paper). A signal that lives
on points (0-simplices), segments (1-simplices) or triangles (2-simplices) is transformed
*exactly* at the integer frequencies of a ``res x res`` grid, so no spatial sampling error
is made before the CNN; an inverse FFT gives a band-limited spatial raster.

For a j-simplex with vertices ``x_1..x_{j+1}`` and constant density ``w`` the transform at
angular frequency ``omega`` is ``w * j! * content * e[-i s_1, ..., -i s_{j+1}]``, where
``s_t = omega . x_t`` and ``e[...]`` is the divided difference of ``exp`` at those nodes
(the paper's closed form, written as a divided difference). Segments use the equivalent
stable ``exp(-i (s_1 + s_2) / 2) * sinc((s_1 - s_2) / 2)``; triangles divide by the largest
node gap and switch to a Taylor series when the nodes (nearly) coincide, e.g. at
``omega = 0`` or for a frequency orthogonal to the triangle's extent.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from embedlab._validation import check_choice, check_int, check_positive_float

__all__ = ["NUFT", "nuft_frequencies"]

Output = Literal["spectral", "raster"]


def nuft_frequencies(res: int, extent: float = 1.0) -> torch.Tensor:
    """Angular frequencies of a ``res x res`` grid over the square ``[0, extent)^2``.

    Returns ``(res, res, 2)`` float64: entry ``[i, j]`` is ``2 pi (k_i, k_j) / extent`` with
    the integers ``k`` in ``torch.fft.fftfreq`` order (0, 1, ..., -1), so the spectral grid
    feeds ``torch.fft.ifft2`` directly.
    """
    res = check_int("res", res, min_value=2)
    extent = check_positive_float("extent", extent)
    k = torch.fft.fftfreq(res, d=1.0 / res, dtype=torch.float64)
    kx, ky = torch.meshgrid(k, k, indexing="ij")
    return torch.stack([kx, ky], dim=-1) * (2.0 * math.pi / extent)


def _check_points(points: object) -> torch.Tensor:
    if not isinstance(points, torch.Tensor):
        raise TypeError(f"points must be a torch.Tensor (batch, n_points, 2), got {type(points)}")
    if points.ndim != 3 or points.shape[-1] != 2:
        raise ValueError(f"points must have shape (batch, n_points, 2), got {tuple(points.shape)}")
    if not points.is_floating_point():
        raise TypeError(f"points must be a floating-point tensor, got dtype {points.dtype}")
    if points.shape[1] < 3:
        raise ValueError(f"points must hold at least 3 points per set, got {points.shape[1]}")
    bad = ~torch.isfinite(points)
    if bool(bad.any()):
        first = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"points must be finite, got NaN or inf at index {first}")
    return points


def _check_faces(faces: object, n_points: int) -> torch.Tensor:
    if not isinstance(faces, torch.Tensor):
        raise TypeError(f"faces must be a torch.Tensor (n_faces, 2 or 3), got {type(faces)}")
    if faces.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"faces must hold integer vertex indices, got dtype {faces.dtype}")
    if faces.ndim != 2 or faces.shape[1] not in (2, 3) or faces.shape[0] == 0:
        raise ValueError(
            "faces must have shape (n_faces >= 1, 2) for segments or (n_faces >= 1, 3) for "
            f"triangles, got {tuple(faces.shape)}"
        )
    lo, hi = int(faces.min()), int(faces.max())
    if lo < 0 or hi >= n_points:
        raise ValueError(
            f"faces must index vertices in [0, {n_points}), got values in [{lo}, {hi}]"
        )
    return faces.long()


def _check_weights(weights: object, batch: int, n: int, what: str) -> torch.Tensor:
    if not isinstance(weights, torch.Tensor):
        raise TypeError(f"weights must be a torch.Tensor (batch, {what}), got {type(weights)}")
    if tuple(weights.shape) != (batch, n):
        raise ValueError(
            f"weights must have shape (batch, {what}) = {(batch, n)}, got {tuple(weights.shape)}"
        )
    bad = ~torch.isfinite(weights)
    if bool(bad.any()):
        first = tuple(int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"weights must be finite, got NaN or inf at index {first}")
    return weights


class NUFT(nn.Module):
    """Differentiable NUFT layer: point sets / segments / triangles -> ``res x res`` grid.

    Args:
        res: grid size (``>= 2``); the transform is evaluated at the integer frequencies
            ``k`` of ``torch.fft.fftfreq(res) * res`` on both axes.
        extent: side of the square domain ``[0, extent)^2`` the coordinates live in;
            coordinates outside wrap around (the grid is periodic).
        output: ``"spectral"`` returns the complex transform ``(batch, res, res)``;
            ``"raster"`` returns ``ifft2`` of it, real ``(batch, res, res)``: the band-limited
            mass per pixel, pixel ``(i, j)`` centred on ``(i, j) * extent / res``.
        sigma: width (in pixels) of a Gaussian low-pass filter applied in the spectral
            domain (the paper's anti-ringing filter); ``0`` applies none.

    ``forward(points, weights=None, faces=None)``:
        points: ``(batch, n_points, 2)`` floating tensor, at least 3 points per set.
        weights: ``(batch, n_points)`` point masses, or ``(batch, n_faces)`` densities per
            face when ``faces`` is given; default all ones.
        faces: ``(n_faces, 2)`` segments or ``(n_faces, 3)`` triangles indexing ``points``,
            shared by the batch; a polygon is given as its triangulation.

    Gradients flow to ``points`` and ``weights``. Computation is in float64 when the input
    is float64, else in float32 (complex64).

    Example:
        >>> layer = NUFT(8)
        >>> pts = torch.rand(2, 10, 2, requires_grad=True)
        >>> layer(pts).shape
        torch.Size([2, 8, 8])
    """

    omega: torch.Tensor
    lowpass: torch.Tensor

    def __init__(
        self, res: int, *, extent: float = 1.0, output: Output = "spectral", sigma: float = 0.0
    ) -> None:
        super().__init__()
        self.res = check_int("res", res, min_value=2)
        self.extent = check_positive_float("extent", extent)
        self.output: Output = check_choice("output", output, ("spectral", "raster"))  # type: ignore[assignment]
        self.sigma = check_positive_float("sigma", sigma, strict=False)
        omega = nuft_frequencies(self.res, self.extent)
        self.register_buffer("omega", omega, persistent=False)
        k = omega * (self.extent / (2.0 * math.pi))  # integer frequencies
        lowpass = torch.exp(-0.5 * (2.0 * math.pi * self.sigma / self.res) ** 2 * (k**2).sum(-1))
        self.register_buffer("lowpass", lowpass, persistent=False)

    def extra_repr(self) -> str:
        return f"res={self.res}, extent={self.extent}, output={self.output!r}, sigma={self.sigma}"

    def forward(
        self,
        points: torch.Tensor,
        weights: torch.Tensor | None = None,
        faces: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Transform ``points`` (and ``faces``) -> ``(batch, res, res)``; see the class doc."""
        points = _check_points(points)
        batch, n_points = points.shape[0], points.shape[1]
        real = torch.float64 if points.dtype == torch.float64 else torch.float32
        omega = self.omega.to(real)
        if faces is None:
            w = (
                torch.ones(batch, n_points, dtype=real, device=points.device)
                if weights is None
                else _check_weights(weights, batch, n_points, "n_points").to(real)
            )
            spec = _points_transform(points.to(real), w, omega)
        else:
            f = _check_faces(faces, n_points)
            n_faces = f.shape[0]
            w = (
                torch.ones(batch, n_faces, dtype=real, device=points.device)
                if weights is None
                else _check_weights(weights, batch, n_faces, "n_faces").to(real)
            )
            spec = _simplex_transform(points.to(real), f, w, omega)
        if self.sigma > 0:
            spec = spec * self.lowpass.to(real)
        if self.output == "raster":
            raster: torch.Tensor = torch.fft.ifft2(spec).real
            return raster
        return spec


def _points_transform(points: torch.Tensor, w: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
    """sum_p w_p exp(-i omega . x_p), chunked over points to bound memory."""
    batch, n = points.shape[0], points.shape[1]
    res = omega.shape[0]
    out = torch.zeros(
        batch,
        res,
        res,
        dtype=torch.complex128 if w.dtype == torch.float64 else torch.complex64,
        device=points.device,
    )
    chunk = max(1, 4_000_000 // max(1, batch * res * res))
    for start in range(0, n, chunk):
        x = points[:, start : start + chunk]  # (batch, c, 2)
        phase = torch.einsum("bcd,ijd->bcij", x, omega)  # (batch, c, res, res)
        ww = w[:, start : start + chunk, None, None]
        out = out + torch.complex(ww * torch.cos(phase), -ww * torch.sin(phase)).sum(1)
    return out


def _simplex_transform(
    points: torch.Tensor, faces: torch.Tensor, w: torch.Tensor, omega: torch.Tensor
) -> torch.Tensor:
    """sum_f w_f j! content_f e[-i s_1, ..., -i s_{j+1}] over segments (j=1) or triangles (j=2)."""
    verts = points[:, faces]  # (batch, n_faces, j+1, 2)
    j = faces.shape[1] - 1
    edges = verts[:, :, 1:] - verts[:, :, :1]  # (batch, n_faces, j, 2)
    if j == 1:
        content = edges[:, :, 0].norm(dim=-1)  # segment length
    else:
        content = (
            0.5 * (edges[..., 0, 0] * edges[..., 1, 1] - edges[..., 0, 1] * edges[..., 1, 0]).abs()
        )
    s = torch.einsum("bftd,ijd->bftij", verts, omega)  # (batch, n_faces, j+1, res, res)
    dd = _exp_dd2(s[:, :, 0], s[:, :, 1]) if j == 1 else _exp_divided_difference_3(s)
    scale = (w * content * math.factorial(j))[:, :, None, None]
    total: torch.Tensor = (scale * dd).sum(1)
    return total


def _exp_divided_difference_3(s: torch.Tensor) -> torch.Tensor:
    """Divided difference of exp at ``-i s_1, -i s_2, -i s_3``; ``s`` is ``(..., 3, res, res)``.

    With the nodes sorted, ``e[z1, z2, z3] = (e[z1, z2] - e[z2, z3]) / (z1 - z3)`` divides by
    the largest gap; when all three nodes are within ``tol`` of each other the Taylor series
    about their mean, ``exp(-i m) (1/2 - sum(d^2) / 48)``, is used instead (error O(gap^3)).
    """
    ss = torch.sort(s, dim=-3).values
    s1, s2, s3 = ss[..., 0, :, :], ss[..., 1, :, :], ss[..., 2, :, :]
    gap = s3 - s1
    tol = 1e-4 if s.dtype == torch.float64 else 1e-2
    near = gap < tol
    e12, e23 = _exp_dd2(s1, s2), _exp_dd2(s2, s3)
    safe_gap = torch.where(near, torch.ones_like(gap), gap)
    closed = (e12 - e23) * (-1j) / safe_gap  # z1 - z3 = i * gap
    m = (s1 + s2 + s3) / 3.0
    d2 = (s1 - m) ** 2 + (s2 - m) ** 2 + (s3 - m) ** 2
    taylor = torch.complex(torch.cos(m), -torch.sin(m)) * (0.5 - d2 / 48.0)
    out: torch.Tensor = torch.where(near, taylor, closed)
    return out


def _exp_dd2(sa: torch.Tensor, sb: torch.Tensor) -> torch.Tensor:
    """``e[-i sa, -i sb] = exp(-i (sa + sb) / 2) sinc((sa - sb) / 2)`` (stable for sa = sb)."""
    mid, half = 0.5 * (sa + sb), 0.5 * (sa - sb)
    return torch.complex(torch.cos(mid), -torch.sin(mid)) * torch.sinc(half / math.pi)
