"""A generated multi-attribute image set: digit x colour x background from MNIST-like digits.

Each 28x28 grey digit becomes a 28x28 RGB image: the stroke is painted in one of
``n_colours`` foreground colours and the rest in one of ``n_backgrounds`` background colours
(both drawn at random, independently of the digit), with a little pixel noise. Three
attributes per image (``digit``, ``colour``, ``background``) make a toy task for
one-embedding-per-attribute models (conditional cross-attention heads).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embedlab._validation import check_int, check_positive_float

__all__ = ["BACKGROUNDS", "COLOURS", "MultiAttributeImages", "multi_attribute_digits"]

COLOURS = np.array(
    [[1.0, 0.1, 0.1], [0.1, 0.9, 0.1], [0.2, 0.3, 1.0], [1.0, 0.9, 0.1], [0.9, 0.2, 0.9],
     [0.1, 0.9, 0.9]],
    dtype=np.float32,
)  # fmt: skip
BACKGROUNDS = np.array(
    [[0.0, 0.0, 0.0], [0.45, 0.45, 0.45], [0.35, 0.2, 0.05], [0.05, 0.2, 0.35], [0.25, 0.0, 0.3],
     [0.0, 0.3, 0.15]],
    dtype=np.float32,
)  # fmt: skip


@dataclass(frozen=True)
class MultiAttributeImages:
    """Images ``x`` ``(n, 3, 28, 28)`` float32 in [0, 1] and ``{attribute: (n,) int64}`` labels."""

    x: np.ndarray
    attributes: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.x.shape[0])


def multi_attribute_digits(
    images: np.ndarray,
    digits: np.ndarray,
    *,
    n_colours: int = 4,
    n_backgrounds: int = 4,
    noise: float = 0.05,
    seed: int = 0,
) -> MultiAttributeImages:
    """Colour the digits: attributes ``digit``, ``colour``, ``background``; deterministic.

    Args:
        images: ``(n, 1, H, W)`` or ``(n, H, W)`` grey images in [0, 1] (``load_mnist(...).x``).
        digits: ``(n,)`` integer labels (the ``digit`` attribute).
        n_colours: foreground colours used, 2..6.
        n_backgrounds: background colours used, 2..6.
        noise: std of the Gaussian pixel noise (``>= 0``), clipped to [0, 1] afterwards.
        seed: random seed of the colours and the noise.

    Example:
        >>> d = multi_attribute_digits(np.zeros((4, 28, 28)), np.arange(4), seed=0)
        >>> d.x.shape, sorted(d.attributes)
        ((4, 3, 28, 28), ['background', 'colour', 'digit'])
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(
            f"images must have shape (n, 1, H, W) or (n, H, W), got {np.shape(images)}"
        )
    if not np.isfinite(x).all():
        raise ValueError("images must be finite, got NaN or inf")
    y = np.asarray(digits)
    if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"digits must be ({x.shape[0]},) integers, got {y.shape} {y.dtype}")
    nc = check_int("n_colours", n_colours, min_value=2)
    nb = check_int("n_backgrounds", n_backgrounds, min_value=2)
    if nc > len(COLOURS):
        raise ValueError(f"n_colours must be <= {len(COLOURS)}, got {n_colours}")
    if nb > len(BACKGROUNDS):
        raise ValueError(f"n_backgrounds must be <= {len(BACKGROUNDS)}, got {n_backgrounds}")
    sigma = check_positive_float("noise", noise, strict=False)
    rng = np.random.default_rng(check_int("seed", seed, min_value=0))
    n = x.shape[0]
    colour = rng.integers(0, nc, n)
    background = rng.integers(0, nb, n)
    ink = np.clip(x, 0.0, 1.0)[:, None]  # (n, 1, H, W)
    fg = COLOURS[colour][:, :, None, None]
    bg = BACKGROUNDS[background][:, :, None, None]
    out = ink * fg + (1.0 - ink) * bg
    if sigma > 0:
        out = out + rng.normal(0.0, sigma, out.shape).astype(np.float32)
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    attrs: dict[str, np.ndarray] = {
        "digit": np.asarray(y, dtype=np.int64),
        "colour": np.asarray(colour, dtype=np.int64),
        "background": np.asarray(background, dtype=np.int64),
    }
    return MultiAttributeImages(out, attrs)
