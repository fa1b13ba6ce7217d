"""Array type aliases shared by the index modules (re-exported by :mod:`._base`)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["F32", "I64"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
