"""A thread budget for one run: torch, faiss, BLAS/OpenMP and numba pools."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["limit_threads"]


@contextlib.contextmanager
def limit_threads(n: int | None) -> Iterator[None]:
    """Limit torch, faiss, BLAS/OpenMP and numba pools to ``n`` threads (``None``: as is).

    numba is limited only when already imported (importing it costs ~0.5 s). Everything
    is restored on exit.
    """
    if n is None:
        yield
        return
    import torch

    old_torch = torch.get_num_threads()
    faiss: Any = None
    with contextlib.suppress(ImportError):
        faiss = importlib.import_module("faiss")
    old_faiss = faiss.omp_get_max_threads() if faiss is not None else None
    numba: Any = sys.modules.get("numba")
    old_numba = numba.get_num_threads() if numba is not None else None
    limiter: Any = contextlib.nullcontext()
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        limiter = threadpool_limits(limits=n)
    torch.set_num_threads(n)
    if faiss is not None:
        faiss.omp_set_num_threads(n)
    if numba is not None:
        numba.set_num_threads(min(n, int(numba.config.NUMBA_NUM_THREADS)))
    try:
        with limiter:
            yield
    finally:
        torch.set_num_threads(old_torch)
        if faiss is not None:
            faiss.omp_set_num_threads(old_faiss)
        if numba is not None:
            numba.set_num_threads(old_numba)
