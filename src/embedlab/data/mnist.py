"""MNIST in the IDX format (gzip or plain) and scikit-learn's bundled 8x8 digits."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from embedlab.data._labeled import LabeledData

__all__ = ["load_digits", "load_mnist", "read_idx"]

_IDX_DTYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _open(path: Path) -> BinaryIO:
    with path.open("rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")  # type: ignore[return-value]


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (the MNIST format): a header of dims, then a dense array.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a bad magic number or a truncated file (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data path does not exist: {path}")
    with _open(path) as fh:
        try:
            header = fh.read(4)
            if len(header) < 4 or header[0] != 0 or header[1] != 0 or header[2] not in _IDX_DTYPES:
                raise ValueError(f"{path.name}: not an IDX file (magic {header.hex()!r})")
            ndim = header[3]
            shape = tuple(int.from_bytes(fh.read(4), "big") for _ in range(ndim))
            dtype = _IDX_DTYPES[header[2]]
            count = int(np.prod(shape)) if shape else 0
            data = fh.read(count * dtype.itemsize)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path.name}: corrupted file ({exc})") from None
    if len(data) != count * dtype.itemsize:
        raise ValueError(
            f"{path.name}: truncated IDX file, expected {count * dtype.itemsize} bytes of data "
            f"for shape {shape}, got {len(data)}"
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

    images = read_idx(find("images-idx3-ubyte"))
    labels = read_idx(find("labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"MNIST images must be (n, rows, cols) and labels (n,) with the same n, "
            f"got {images.shape} and {labels.shape}"
        )
    x = (images.astype(np.float32) / 255.0)[:, None, :, :]
    return LabeledData(x, labels.astype(np.int64), name="mnist")


def load_digits() -> LabeledData:
    """scikit-learn's bundled 1,797 8x8 digits as ``(n, 1, 8, 8)`` float32 in [0, 1]."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None, :, :]
    return LabeledData(x, np.asarray(bunch.target, dtype=np.int64), name="digits")
