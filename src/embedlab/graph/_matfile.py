"""A structural check of MATLAB v5 files before scipy reads them.

scipy's compiled MAT v5 reader trusts the byte counts and dimensions it reads: a
damaged file (a dims element of 27 bytes, an element type changed by one byte) can
crash the interpreter with a segmentation fault rather than raise. :func:`check_mat_v5`
walks every element of the file as the format specifies (MathWorks, "MAT-File
Format", Version 5) and raises ``ValueError`` at the first element that does not fit,
so :func:`scipy.io.loadmat` only ever sees well-formed structure.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import Literal

import numpy as np

__all__ = ["check_mat_v5"]

# element data types -> item size (miMATRIX = 14 and miCOMPRESSED = 15 are containers)
_ITEMSIZE = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
_NUMPY = {
    1: "i1",
    2: "u1",
    3: "i2",
    4: "u2",
    5: "i4",
    6: "u4",
    7: "f4",
    9: "f8",
    12: "i8",
    13: "u8",
}
_MATRIX, _COMPRESSED = 14, 15
_CELL, _STRUCT, _OBJECT, _CHAR, _SPARSE = 1, 2, 3, 4, 5
_NUMERIC_CLASSES = range(6, 16)
_MAX_DEPTH = 16
_ORDERS: dict[bytes, Literal["<", ">"]] = {b"IM": "<", b"MI": ">"}


class _Bad(Exception):
    pass


class _Reader:
    """Elements of one byte range, in the file's byte order."""

    def __init__(
        self, data: bytes, order: Literal["<", ">"], start: int = 0, end: int | None = None
    ) -> None:
        self.data, self.order = data, order
        self.pos, self.end = start, len(data) if end is None else end

    def done(self) -> bool:
        return self.pos >= self.end

    def element(self, *, padded: bool = True) -> tuple[int, int, int]:
        """``(type, start, nbytes)`` of the next element; moves past it."""
        if self.pos + 8 > self.end:
            raise _Bad(f"element tag at byte {self.pos} runs past the end")
        word, second = struct.unpack_from(self.order + "II", self.data, self.pos)
        if word >> 16:  # small data element: <= 4 bytes packed into the tag
            kind, nbytes, start = word & 0xFFFF, word >> 16, self.pos + 4
            if nbytes > 4:
                raise _Bad(f"small element at byte {self.pos} claims {nbytes} bytes")
            self.pos += 8
            return kind, start, nbytes
        kind, nbytes, start = word, second, self.pos + 8
        if start + nbytes > self.end:
            raise _Bad(f"element at byte {self.pos} claims {nbytes} bytes, past the end")
        self.pos = start + nbytes + ((-nbytes) % 8 if padded else 0)
        return kind, start, nbytes

    def values(self, what: str, kinds: tuple[int, ...] | None = None) -> np.ndarray:
        """The next element as a numeric array; its type and byte count must agree."""
        kind, start, nbytes = self.element()
        if kind not in _NUMPY or (kinds is not None and kind not in kinds):
            raise _Bad(f"{what}: unexpected element type {kind}")
        if nbytes % _ITEMSIZE[kind]:
            raise _Bad(f"{what}: {nbytes} bytes is not a whole number of type-{kind} items")
        dtype = np.dtype(_NUMPY[kind]).newbyteorder(self.order)
        return np.frombuffer(self.data, dtype=dtype, count=nbytes // dtype.itemsize, offset=start)


def _check_matrix(data: bytes, order: Literal["<", ">"], start: int, end: int, depth: int) -> None:
    if start == end:
        return  # an empty matrix element
    if depth > _MAX_DEPTH:
        raise _Bad(f"cells / structs nested deeper than {_MAX_DEPTH}")
    r = _Reader(data, order, start, end)
    flags = r.values("array flags", (6,))
    if len(flags) != 2:
        raise _Bad(f"array flags must be 2 words, got {len(flags)}")
    cls, is_complex = int(flags[0]) & 0xFF, bool(int(flags[0]) & 0x800)
    dims = r.values("dimensions", (5,))
    if len(dims) < 2 or (dims < 0).any():
        raise _Bad(f"dimensions must be >= 2 non-negative numbers, got {dims.tolist()}")
    r.values("array name", (1, 2))
    count = math.prod(int(d) for d in dims)
    if cls in _NUMERIC_CLASSES or cls == _CHAR:
        for _ in range(2 if is_complex else 1):
            part = r.values("numeric data") if cls != _CHAR else _text(r)
            if len(part) != count:
                raise _Bad(f"dims {dims.tolist()} need {count} values, got {len(part)}")
    elif cls == _SPARSE:
        _check_sparse(r, dims, is_complex)
    elif cls in (_CELL, _STRUCT, _OBJECT):
        fields = 1
        if cls == _OBJECT:
            r.values("class name", (1, 2))
        if cls in (_STRUCT, _OBJECT):
            width = r.values("field name length", (5,))
            names = r.values("field names", (1, 2))
            if len(width) != 1 or width[0] <= 0 or len(names) % int(width[0]):
                raise _Bad("struct field names do not fit their length")
            fields = len(names) // int(width[0])
        for _ in range(count * fields):
            kind, sub, nbytes = r.element()
            if kind != _MATRIX:
                raise _Bad(f"a cell or field must be a matrix element, got type {kind}")
            _check_matrix(data, order, sub, sub + nbytes, depth + 1)
    else:
        raise _Bad(f"unsupported MATLAB array class {cls}")


def _text(r: _Reader) -> np.ndarray:
    kind, start, nbytes = r.element()
    if kind not in _ITEMSIZE or nbytes % _ITEMSIZE[kind]:
        raise _Bad(f"character data: bad element type {kind} or size {nbytes}")
    if kind in (16, 17, 18):  # UTF text: one char per code point, checked by decoding
        codec = {16: "utf-8", 17: "utf-16", 18: "utf-32"}[kind]
        suffix = "" if kind == 16 else ("-le" if r.order == "<" else "-be")
        try:
            text = r.data[start : start + nbytes].decode(codec + suffix)
        except UnicodeDecodeError as exc:
            raise _Bad(f"character data is not {codec}") from exc
        return np.zeros(len(text))
    return np.zeros(nbytes // _ITEMSIZE[kind])


def _check_sparse(r: _Reader, dims: np.ndarray, is_complex: bool) -> None:
    if len(dims) != 2:
        raise _Bad(f"a sparse matrix must have 2 dimensions, got {dims.tolist()}")
    n_rows, n_cols = int(dims[0]), int(dims[1])
    rows = r.values("sparse row indices", (5, 6, 12, 13))
    starts = r.values("sparse column starts", (5, 6, 12, 13)).astype(np.int64)
    if len(starts) != n_cols + 1 or starts[0] != 0 or (np.diff(starts) < 0).any():
        raise _Bad(f"sparse column starts must be {n_cols + 1} non-decreasing values from 0")
    nnz = int(starts[-1])
    if nnz > len(rows) or ((rows[:nnz] < 0) | (rows[:nnz] >= n_rows)).any():
        raise _Bad(f"sparse row indices must be {nnz} values in [0, {n_rows})")
    for _ in range(2 if is_complex else 1):
        if len(r.values("sparse values")) < nnz:
            raise _Bad(f"a sparse matrix with {nnz} entries has fewer values")


def check_mat_v5(data: bytes, where: str) -> None:
    """Raise ``ValueError`` naming ``where`` if a MAT v5 file's structure is damaged.

    Files of other versions (v4, v7.3) are left to scipy, which reads them without
    compiled code or refuses them.
    """
    if len(data) < 128:
        return  # scipy refuses (or reads as v4, in pure Python)
    order = _ORDERS.get(data[126:128])
    if order is None or data[0] == 0:
        return  # not v5: v4 starts with a zero byte; scipy decides
    (version,) = struct.unpack_from(order + "H", data, 124)
    if version != 0x0100:
        return
    try:
        top = _Reader(data, order, 128)
        while not top.done():
            kind, start, nbytes = top.element(padded=False)
            if kind == _COMPRESSED:
                try:
                    inner = zlib.decompress(data[start : start + nbytes])
                except zlib.error as exc:
                    raise _Bad(f"compressed element at byte {start - 8}: {exc}") from None
                sub = _Reader(inner, order)
                while not sub.done():
                    k, s, n = sub.element()
                    if k != _MATRIX:
                        raise _Bad(f"a compressed element must hold a matrix, got type {k}")
                    _check_matrix(inner, order, s, s + n, 0)
            elif kind == _MATRIX:
                _check_matrix(data, order, start, start + nbytes, 0)
                top.pos += (-nbytes) % 8
            else:
                raise _Bad(f"a top-level element must be a matrix, got type {kind}")
    except _Bad as exc:
        raise ValueError(f"{where}: damaged MATLAB file ({exc})") from None
