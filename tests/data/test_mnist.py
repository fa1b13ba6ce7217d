from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from embedlab.data import LabeledData, load_digits, load_mnist, read_idx


def _write_idx(path: Path, array: np.ndarray, *, compress: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", n) for n in array.shape
    )
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("compress", [True, False])
def test_load_mnist_round_trip(tmp_path: Path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    suffix = ".gz" if compress else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress=compress)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, compress=compress)
    data = load_mnist(tmp_path)
    assert data.x.shape == (5, 1, 28, 28) and data.x.dtype == np.float32
    np.testing.assert_allclose(data.x[:, 0] * 255.0, images, atol=1e-4)
    assert data.y.tolist() == [3, 1, 4, 1, 5]
    assert data.select_classes([1]).y.tolist() == [1, 1]


def test_truncated_and_bad_files(tmp_path: Path) -> None:
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    path = tmp_path / "t10k-images-idx3-ubyte"
    _write_idx(path, images, compress=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: truncated IDX file"):
        read_idx(path)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x12\x34\x56\x78")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    with pytest.raises(FileNotFoundError, match="data path does not exist"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="has no t10k-labels-idx1-ubyte"):
        _write_idx(path, images, compress=False)
        load_mnist(tmp_path)


def test_labeled_data_validation() -> None:
    with pytest.raises(ValueError, match=r"y must have shape \(2,\), got \(3,\)"):
        LabeledData(np.zeros((2, 3)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="x must be finite"):
        LabeledData(np.array([[np.nan]]), np.zeros(1, dtype=int))
    with pytest.raises(TypeError, match="integer class labels"):
        LabeledData(np.zeros((1, 2)), np.zeros(1))
    with pytest.raises(ValueError, match="must not be empty"):
        LabeledData(np.zeros((0, 2)), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="select no samples"):
        LabeledData(np.zeros((1, 2)), np.zeros(1, dtype=int)).select_classes([7])


def test_digits_bundled() -> None:
    data = load_digits()
    assert data.x.shape == (1797, 1, 8, 8)
    assert data.x.max() <= 1.0 and set(data.classes.tolist()) == set(range(10))


def test_real_mnist(shared_data: Path) -> None:
    folder = shared_data / "mnist-t10k"
    if not folder.exists():
        pytest.skip("../shared/data/mnist-t10k not available")
    data = load_mnist(folder)
    assert data.x.shape == (10000, 1, 28, 28)
    assert np.bincount(data.y).tolist()[:2] == [980, 1135]
