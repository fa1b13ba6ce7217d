"""``shapes``: small RGB images drawn with numpy from five known, discrete factors.

A seeded, deterministic stand-in for dSprites / 3D Shapes for disentanglement
experiments: every image shows one filled shape on a black background, and the factors
that generated it are returned with it, so metrics such as InfoMEC can score a learned
code against the true sources. No download, no files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedlab._registry import parse_spec
from embedlab._validation import (
    check_choice,
    check_finite,
    check_int,
    check_keywords,
    check_nonempty,
)
from embedlab.data.labeled import LabeledData

__all__ = [
    "COLOURS",
    "FACTOR_NAMES",
    "SHAPE_NAMES",
    "FactorData",
    "load_factor_data",
    "make_shapes",
    "shape_centre",
]

SHAPE_NAMES = ("square", "circle", "triangle")
FACTOR_NAMES = ("shape", "x", "y", "scale", "colour")
COLOURS = np.array(  # RGB in [0, 1]: red, green, blue, yellow, magenta
    [[1.0, 0.1, 0.1], [0.1, 0.9, 0.1], [0.2, 0.3, 1.0], [1.0, 0.9, 0.1], [0.9, 0.2, 0.9]],
    dtype=np.float32,
)
N_POSITIONS = 6
N_SCALES = 4


@dataclass(frozen=True)
class FactorData:
    """Images with the discrete factors (sources) that generated them.

    Args:
        images: ``(n, channels, height, width)`` float32 in [0, 1]; must be finite.
        factors: ``(n, n_factors)`` int64, factor ``i`` takes values ``0..factor_sizes[i]-1``.
        factor_names: one name per factor column.
        factor_sizes: number of values of each factor.
        name: a short name for reports.
    """

    images: np.ndarray
    factors: np.ndarray
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    name: str = "data"

    def __post_init__(self) -> None:
        images = np.asarray(self.images, dtype=np.float32)
        factors = np.asarray(self.factors)
        if images.ndim != 4:
            raise ValueError(
                f"images must have shape (n, channels, height, width), got {images.shape}"
            )
        check_nonempty("images", images.shape[0])
        check_finite("images", images)
        if factors.ndim != 2 or factors.shape[0] != images.shape[0]:
            raise ValueError(
                f"factors must have shape ({images.shape[0]}, n_factors), got {factors.shape}"
            )
        if factors.dtype.kind not in "iu":
            raise TypeError(f"factors must hold integers, got dtype {factors.dtype}")
        if len(self.factor_names) != factors.shape[1] or len(self.factor_sizes) != factors.shape[1]:
            raise ValueError(
                f"factor_names and factor_sizes must have {factors.shape[1]} entries, got "
                f"{len(self.factor_names)} and {len(self.factor_sizes)}"
            )
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "factors", factors.astype(np.int64, copy=False))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def labeled(self, factor: str) -> LabeledData:
        """The images labelled by one factor (for the clustering / metric suites)."""
        i = self.factor_names.index(check_choice("factor", factor, self.factor_names))
        return LabeledData(self.images, self.factors[:, i], name=self.name)

    def subset(self, index: np.ndarray) -> FactorData:
        """The samples at ``index`` (an integer array or boolean mask)."""
        return FactorData(
            self.images[index],
            self.factors[index],
            self.factor_names,
            self.factor_sizes,
            name=self.name,
        )


def _geometry(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(half_sizes, centres)`` in pixels: scales grow from ~12% to ~22% of the image, and
    the centre grid keeps the largest shape inside the frame."""
    half = np.linspace(0.12, 0.22, N_SCALES) * size
    margin = half[-1] + 1.0
    centres = np.linspace(margin, size - 1 - margin, N_POSITIONS)
    return half, centres


def _mask(shape: int, cx: float, cy: float, r: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    dx, dy = xs - cx, ys - cy
    if shape == 0:  # square of half-side 0.85 r (area close to the circle's)
        return (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    if shape == 1:
        return dx * dx + dy * dy <= r * r
    # isosceles triangle, apex up: (cx, cy - r), base from (cx - r, cy + r) to (cx + r, cy + r)
    return (dy <= r) & (np.abs(dx) <= (dy + r) / 2.0)


def make_shapes(n: int = 5000, *, size: int = 32, seed: int = 0) -> FactorData:
    """Draw ``n`` images of one filled shape each, factors sampled uniformly at random.

    Factors (discrete, independent): ``shape`` in {square, circle, triangle}, ``x`` and
    ``y`` (6 centre positions each), ``scale`` (4 sizes), ``colour`` (5 colours, see
    :data:`COLOURS`). The centre pixel of every image has the shape's colour.

    Args:
        n: number of images, ``>= 1``.
        size: image side in pixels, ``>= 16`` (images are ``(n, 3, size, size)``).
        seed: the same seed gives the same images and factors.

    Example:
        >>> d = make_shapes(10, size=32, seed=0)
        >>> d.images.shape, d.factors.shape, d.factor_names[0]
        ((10, 3, 32, 32), (10, 5), 'shape')
    """
    n = check_int("n", n, min_value=1)
    size = check_int("size", size, min_value=16)
    seed = check_int("seed", seed, min_value=0)
    sizes = (len(SHAPE_NAMES), N_POSITIONS, N_POSITIONS, N_SCALES, len(COLOURS))
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, k, size=n) for k in sizes], axis=1).astype(np.int64)
    half, centres = _geometry(size)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    images = np.zeros((n, 3, size, size), dtype=np.float32)
    for i, (shape, fx, fy, fs, fc) in enumerate(factors):
        mask = _mask(int(shape), centres[fx], centres[fy], half[fs], xs, ys)
        images[i][:, mask] = COLOURS[fc][:, None]
    return FactorData(images, factors, FACTOR_NAMES, sizes, name="shapes")


def shape_centre(data_size: int, fx: int, fy: int) -> tuple[int, int]:
    """``(row, col)`` of the pixel nearest to the centre of a shape at positions
    ``(fx, fy)`` in an image of side ``data_size``."""
    _, centres = _geometry(data_size)
    return int(np.rint(centres[fy])), int(np.rint(centres[fx]))


def load_factor_data(spec: str) -> FactorData:
    """``"shapes"`` or ``"shapes(n=5000, size=32, seed=0)"``: a data set with known factors.

    Example:
        >>> len(load_factor_data("shapes(n=20, size=16)"))
        20
    """
    if not isinstance(spec, str):
        raise TypeError(f"data must be a string like 'shapes(n=5000,size=32)', got {spec!r}")
    name, kwargs = parse_spec(spec)
    if name != "shapes":
        raise ValueError(f"data must be shapes or shapes(n=..., size=..., seed=...); got {spec!r}")
    check_keywords("data 'shapes'", kwargs, ("n", "seed", "size"))
    return make_shapes(**kwargs)
