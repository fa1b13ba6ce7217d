"""The generated digit x colour x background set."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.data.multi_attribute import BACKGROUNDS, COLOURS, multi_attribute_digits


def _digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = np.zeros((n, 1, 28, 28), np.float32)
    x[:, 0, 10:18, 12:16] = 1.0
    return x, rng.integers(0, 10, n)


def test_deterministic_and_attributes_are_painted() -> None:
    x, y = _digits(40)
    a = multi_attribute_digits(x, y, noise=0.0, seed=3)
    b = multi_attribute_digits(x, y, noise=0.0, seed=3)
    c = multi_attribute_digits(x, y, noise=0.0, seed=4)
    assert np.array_equal(a.x, b.x) and not np.array_equal(a.x, c.x)
    assert a.x.shape == (40, 3, 28, 28) and a.x.dtype == np.float32 and len(a) == 40
    assert np.array_equal(a.attributes["digit"], y)
    for i in range(40):  # stroke pixel = the colour, corner pixel = the background
        assert np.allclose(a.x[i, :, 12, 13], COLOURS[a.attributes["colour"][i]])
        assert np.allclose(a.x[i, :, 0, 0], BACKGROUNDS[a.attributes["background"][i]])
    assert set(a.attributes["colour"]) == {0, 1, 2, 3}
    noisy = multi_attribute_digits(x, y, seed=3)
    assert np.array_equal(noisy.attributes["colour"], a.attributes["colour"])
    assert noisy.x.min() >= 0.0 and noisy.x.max() <= 1.0


def test_bad_input() -> None:
    x, y = _digits(4)
    with pytest.raises(ValueError, match="n_colours"):
        multi_attribute_digits(x, y, n_colours=7)
    with pytest.raises(ValueError, match="n_backgrounds"):
        multi_attribute_digits(x, y, n_backgrounds=1)
    with pytest.raises(ValueError, match="digits"):
        multi_attribute_digits(x, y[:3])
    with pytest.raises(ValueError, match="images"):
        multi_attribute_digits(np.zeros((4, 2, 28, 28)), y)
    with pytest.raises(ValueError, match="noise"):
        multi_attribute_digits(x, y, noise=-1.0)
