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


def _idx_bytes(array: np.ndarray, dims: tuple[int, ...] | None = None, code: int = 0x08) -> bytes:
    shape = array.shape if dims is None else dims
    header = struct.pack(">BBBB", 0, 0, code, len(shape))
    return header + b"".join(struct.pack(">I", n) for n in shape) + array.tobytes()


def test_header_dims_must_match_the_data(tmp_path: Path) -> None:
    path = tmp_path / "x-idx3-ubyte"
    # 4 x 2**31 x 2**31 bytes announced: checked against the data, nothing allocated
    path.write_bytes(_idx_bytes(np.zeros(16, np.uint8), dims=(4, 2**31, 2**31)))
    with pytest.raises(ValueError, match=r"x-idx3-ubyte: truncated IDX file, expected 18446"):
        read_idx(path)
    path.write_bytes(_idx_bytes(np.zeros(16, np.uint8), dims=(2, 2)))
    with pytest.raises(
        ValueError, match=r"x-idx3-ubyte: IDX header dims \(2, 2\) announce 4 bytes"
    ):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x08\x00")
    with pytest.raises(ValueError, match=r"must have at least 1 dimension, got 0"):
        read_idx(path)
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00")
    with pytest.raises(ValueError, match=r"truncated IDX header, expected 3 dims \(12 bytes\)"):
        read_idx(path)


def test_truncated_and_corrupted_gzip(tmp_path: Path) -> None:
    payload = gzip.compress(_idx_bytes(np.arange(4000, dtype=np.uint8).reshape(40, 10, 10) % 7))
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(payload[: len(payload) // 2])
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: corrupted file"):
        read_idx(path)
    flipped = bytearray(payload)
    flipped[len(payload) // 2] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: (corrupted|truncated)"):
        read_idx(path)
    path.write_bytes(payload[:-4] + b"\x00\x00\x00\x00")  # wrong length in the trailer
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: corrupted file"):
        read_idx(path)


def test_load_mnist_refuses_non_byte_images(tmp_path: Path) -> None:
    images = np.zeros((2, 3, 3), dtype=">f4")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(_idx_bytes(images, code=0x0D))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.array([1, 2], np.uint8)))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: MNIST images must be bytes"):
        load_mnist(tmp_path)
