"""The generated ``shapes`` data set: determinism, factors drawn correctly, spec, errors."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.data.shapes import (
    COLOURS,
    FACTOR_NAMES,
    FactorData,
    load_factor_data,
    make_shapes,
    shape_centre,
)


def test_deterministic_under_seed() -> None:
    a, b = make_shapes(40, size=32, seed=3), make_shapes(40, size=32, seed=3)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.factors, b.factors)
    c = make_shapes(40, size=32, seed=4)
    assert not np.array_equal(a.factors, c.factors)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_factors_match_pixels(size: int) -> None:
    d = make_shapes(60, size=size, seed=0)
    assert d.images.shape == (60, 3, size, size) and d.images.dtype == np.float32
    assert d.factor_names == FACTOR_NAMES and d.factor_sizes == (3, 6, 6, 4, 5)
    assert d.images.min() == 0.0 and d.images.max() <= 1.0
    for img, (_shape, fx, fy, _scale, colour) in zip(d.images, d.factors, strict=True):
        row, col = shape_centre(size, int(fx), int(fy))
        assert np.array_equal(img[:, row, col], COLOURS[colour])  # the centre has the colour
        assert np.array_equal(img[:, 0, 0], np.zeros(3))  # the corner is background
        lit = img.sum(axis=0) > 0
        rows, cols = np.nonzero(lit)
        assert abs(rows.mean() - row) <= 0.2 * size and abs(cols.mean() - col) <= 0.2 * size


def test_scale_grows_area_and_shapes_differ() -> None:
    d = make_shapes(2000, size=32, seed=1)
    area = (d.images.sum(axis=1) > 0).sum(axis=(1, 2))
    by_scale = [area[d.factors[:, 3] == s].mean() for s in range(4)]
    assert by_scale == sorted(by_scale) and by_scale[0] < by_scale[-1]
    # at equal scale, a triangle (half its box) covers less than a circle or square
    big = d.factors[:, 3] == 3
    tri = area[big & (d.factors[:, 0] == 2)].mean()
    circ = area[big & (d.factors[:, 0] == 1)].mean()
    assert tri < 0.75 * circ


def test_spec() -> None:
    d = load_factor_data("shapes(n=12, size=16, seed=2)")
    assert len(d) == 12 and d.images.shape[2:] == (16, 16)
    assert np.array_equal(d.factors, make_shapes(12, size=16, seed=2).factors)
    labelled = d.labeled("colour")
    assert labelled.name == "shapes" and (labelled.y == d.factors[:, 4]).all()
    with pytest.raises(ValueError, match="factor must be one of"):
        d.labeled("hue")
    with pytest.raises(ValueError, match="data must be shapes"):
        load_factor_data("mnist")
    with pytest.raises(ValueError, match="unknown hyper-parameter 'colour'"):
        load_factor_data("shapes(colour=1)")
    with pytest.raises(ValueError, match="size must be >= 16, got 8"):
        load_factor_data("shapes(size=8)")


def test_nan_images_rejected() -> None:
    d = make_shapes(4, size=16)
    images = d.images.copy()
    images[1, 0, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"images must be finite.*\(1, 0, 2, 3\)"):
        FactorData(images, d.factors, d.factor_names, d.factor_sizes)
    with pytest.raises(ValueError, match="factors must have shape"):
        FactorData(d.images, d.factors[:2], d.factor_names, d.factor_sizes)
