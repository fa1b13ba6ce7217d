"""The user's embedlab cache folder (embeddings of datasets, compiled scan kernels)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    """``$EMBEDLAB_CACHE`` if set, else ``~/.cache/embedlab``."""
    env = os.environ.get("EMBEDLAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "embedlab"
