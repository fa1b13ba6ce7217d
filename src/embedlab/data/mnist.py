"""MNIST in the IDX format (gzip or plain) and scikit-learn's bundled 8x8 digits."""

from __future__ import annotations

import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from embedlab._io import open_maybe_gzip
from embedlab.data.labeled import LabeledData

__all__ = ["load_digits", "load_mnist", "read_idx"]

_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


_READ_BLOCK = 1 << 24


def _read_at_most(fh: BinaryIO, n: int) -> bytearray:
    """Up to ``n`` bytes, read in blocks: a header that announces 7 TiB allocates nothing."""
    out = bytearray()
    while len(out) < n:
        block = fh.read(min(_READ_BLOCK, n - len(out)))
        if not block:
            break
        out += block
    return out


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (the MNIST format): a header of dims, then a dense array.

    The file may be gzip-compressed. The data must be exactly as long as the
    dims in the header say: the header is checked against the data before any
    array is allocated.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a bad magic number, a truncated or corrupted file or gzip
            stream, or dims that do not match the data (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data path does not exist: {path}")
    try:
        with open_maybe_gzip(path) as fh:
            header = fh.read(4)
            if len(header) < 4 or header[0] != 0 or header[1] != 0 or header[2] not in _IDX_DTYPES:
                raise ValueError(f"{path}: not an IDX file (magic {header.hex()!r})")
            ndim = header[3]
            if ndim == 0:
                raise ValueError(f"{path}: an IDX file must have at least 1 dimension, got 0")
            dims = fh.read(4 * ndim)
            if len(dims) != 4 * ndim:
                raise ValueError(
                    f"{path}: truncated IDX header, expected {ndim} dims "
                    f"({4 * ndim} bytes), got {len(dims)} bytes"
                )
            shape = struct.unpack(f">{ndim}I", dims)
            dtype = _IDX_DTYPES[header[2]]
            expected = math.prod(shape) * dtype.itemsize
            data = _read_at_most(fh, expected)
            extra = fh.read(1)  # also reaches the end of a gzip stream, which checks its CRC
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupted file ({exc})") from None
    if len(data) != expected:
        raise ValueError(
            f"{path}: truncated IDX file, expected {expected} bytes of data "
            f"for shape {shape}, got {len(data)}"
        )
    if extra:
        raise ValueError(
            f"{path}: IDX header dims {shape} announce {expected} bytes of data, "
            f"but the file holds more"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def load_mnist(path: str | os.PathLike[str], *, split: str = "t10k") -> LabeledData:
    """MNIST images ``(n, 1, 28, 28)`` float32 in [0, 1] and labels ``(n,)`` from a folder.

    The folder holds ``{split}-images-idx3-ubyte[.gz]`` and ``{split}-labels-idx1-ubyte[.gz]``
    (``split`` is ``"t10k"`` or ``"train"``).

    Example:
        >>> data = load_mnist("../shared/data/mnist-t10k")  # doctest: +SKIP
        >>> data.x.shape
        (10000, 1, 28, 28)
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"data path does not exist: {folder}")

    def find(kind: str) -> Path:
        for suffix in (".gz", ""):
            candidate = folder / f"{split}-{kind}{suffix}"
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"{folder} has no {split}-{kind}[.gz] file")

    images_path, labels_path = find("images-idx3-ubyte"), find("labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"MNIST images must be (n, rows, cols) and labels (n,) with the same n, "
            f"got {images.shape} in {images_path} and {labels.shape} in {labels_path}"
        )
    if images.dtype != np.uint8:
        raise ValueError(f"{images_path}: MNIST images must be bytes (uint8), got {images.dtype}")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{labels_path}: MNIST labels must be integers, got {labels.dtype}")
    if images.shape[0] == 0:
        raise ValueError(f"{images_path}: MNIST files must hold at least one image, got 0")
    x = (images.astype(np.float32) / 255.0)[:, None, :, :]
    return LabeledData(x, labels.astype(np.int64), name="mnist")


def load_digits() -> LabeledData:
    """scikit-learn's bundled 1,797 8x8 digits as ``(n, 1, 8, 8)`` float32 in [0, 1]."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None, :, :]
    return LabeledData(x, np.asarray(bunch.target, dtype=np.int64), name="digits")
