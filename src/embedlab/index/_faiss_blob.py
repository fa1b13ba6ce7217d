"""faiss indexes saved inside an embedlab index: ``faiss.serialize_index`` bytes as uint8."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

__all__ = ["faiss_from_blob", "faiss_to_blob"]


def faiss_to_blob(index: Any) -> np.ndarray:
    """The serialised bytes of a faiss ``index`` as a 1-d uint8 array (no pickle)."""
    return np.asarray(faiss.serialize_index(index), dtype=np.uint8)


def faiss_from_blob(blob: Any, folder: Path) -> Any:
    """The faiss index in ``blob``; a ValueError naming ``folder`` if it is not one."""
    blob = np.ascontiguousarray(blob)
    if blob.dtype != np.uint8 or blob.ndim != 1:
        raise ValueError(f"faiss_index must be a 1-d uint8 array, got {blob.dtype} {blob.shape}")
    try:
        return faiss.deserialize_index(blob)
    except RuntimeError as exc:
        raise ValueError(f"{folder}: faiss cannot read the saved index ({exc})") from None
