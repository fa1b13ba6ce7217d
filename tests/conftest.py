"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# Real public data sets live next to the project, never inside it (see ../shared/data/README.md).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; the test is skipped when the folder is absent."""
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data not available")
    return SHARED_DATA


@pytest.fixture
def require_shared(shared_data: Path) -> Callable[[str], Path]:
    """``require_shared("frappe")`` -> ``../shared/data/frappe``, skipping the test if absent."""

    def get(relative: str) -> Path:
        path = shared_data / relative
        if not path.exists():
            pytest.skip(f"../shared/data/{relative} not available")
        return path

    return get
