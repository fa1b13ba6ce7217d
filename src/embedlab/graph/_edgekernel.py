"""A one-pass numba parser for the most common edge list: two integer columns per line.

Used by :func:`embedlab.graph._edgeparse.parse_fast` on files of at least
:data:`MIN_BYTES` (smaller files do not pay numba's import). Anything else (a third
column, a sign, a letter, an id of more than 18 digits, a line with one id) makes it
return ``-1`` and the vectorised / line-by-line readers take over.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MIN_BYTES", "parse_int_pairs"]

#: files smaller than this are parsed with numpy (numba's import costs ~0.5 s)
MIN_BYTES = 4 << 20

_KERNEL: Any = None


def _kernel() -> Any:
    global _KERNEL
    if _KERNEL is None:
        import numba

        @numba.njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
        def kernel(arr: np.ndarray, out: np.ndarray) -> int:
            n = 0
            col = 0
            val = 0
            digits = 0
            for i in range(arr.shape[0]):
                b = arr[i]
                if 48 <= b <= 57:
                    val = val * 10 + (b - 48)
                    digits += 1
                    if digits > 18:
                        return -1
                elif b == 32 or b == 9 or b == 44 or b == 13 or b == 10:
                    if digits:
                        if col == 2:
                            return -1
                        out[n, col] = val
                        col += 1
                        val = 0
                        digits = 0
                    if b == 10:
                        if col == 2:
                            n += 1
                        elif col != 0:
                            return -1
                        col = 0
                else:
                    return -1
            if digits:
                if col == 2:
                    return -1
                out[n, col] = val
                col += 1
            if col == 2:
                n += 1
            elif col != 0:
                return -1
            return n

        _KERNEL = kernel
    return _KERNEL


def parse_int_pairs(raw: bytes) -> np.ndarray | None:
    """``(m, 2)`` int64 ids of a two-column integer edge list, or ``None`` if it is not one."""
    arr = np.frombuffer(raw, dtype=np.uint8)
    out = np.empty((arr.shape[0] // 4 + 1, 2), dtype=np.int64)  # >= 4 bytes per edge line
    n = int(_kernel()(arr, out))
    if n <= 0:
        return None
    return out[:n]
