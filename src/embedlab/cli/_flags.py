"""Flags that mean the same thing in every command: ``--threads``, ``--device``, ``--quiet``.

- ``--threads N``: the threads this process computes with (torch, faiss / OpenMP, BLAS,
  numba). Set before the libraries start their pools, through the environment variables
  they read at start-up, and directly for those already imported. With ``--ray`` it is
  the driver's count; ``--cpus-per-run`` sets each run's.
- ``--device``: the torch device training runs on (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
- ``--quiet`` / ``-q``: no progress bars or status lines (results still print).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

__all__ = ["Device", "Quiet", "Threads", "apply_threads", "check_device"]

Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        help="threads for torch, faiss, BLAS and numba in this process (default: their own)",
    ),
]
Device = Annotated[
    str, typer.Option("--device", help="torch device to train on: cpu, cuda, cuda:1, mps")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars or status lines")]

_THREAD_ENV = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def apply_threads(threads: int | None) -> None:
    """``--threads``: limit every compute pool of this process to ``threads`` (``None``: keep).

    Raises:
        ValueError: ``threads`` is below 1.
    """
    if threads is None:
        return
    from embedlab._validation import check_int

    n = check_int("--threads", threads, min_value=1)
    for name in _THREAD_ENV:
        os.environ[name] = str(n)
    numba: Any = sys.modules.get("numba")
    if numba is None:
        os.environ["NUMBA_NUM_THREADS"] = str(n)
    else:
        numba.set_num_threads(min(n, int(numba.config.NUMBA_NUM_THREADS)))
    torch: Any = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    faiss: Any = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(n)


def check_device(device: str) -> str:
    """``--device``: a device torch knows and this machine has.

    Raises:
        ValueError: not a torch device name, or CUDA / MPS is not available here.
    """
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"--device must be a torch device like cpu, cuda or cuda:1, got {device!r} ({exc})"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(
            f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: MPS is not available on this machine")
    return str(dev)
