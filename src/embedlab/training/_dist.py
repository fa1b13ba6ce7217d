"""``torch.distributed`` plumbing for the streamed trainer: joining the group torchrun
describes, rank / world queries, and the few collectives the trainer needs.

Every function works without a process group (one process: rank 0 of 1), so the library
never needs more than one process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import torch
import torch.distributed as dist

from embedlab._validation import check_positive_float

__all__ = [
    "DistributedRunError",
    "all_reduce",
    "gather_1d",
    "init_distributed",
    "is_distributed",
    "rank_world",
    "shutdown_distributed",
    "translate_dist_errors",
]


class DistributedRunError(RuntimeError):
    """Another rank died, hung past the timeout, or the group could not be formed."""


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(
    *, timeout_s: float = 600.0, backend: str | None = None, init_method: str | None = None
) -> tuple[int, int]:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT`` in the environment) and return ``(rank, world_size)``.

    Without those variables, or with ``WORLD_SIZE=1``, no group is made: ``(0, 1)``.

    Args:
        timeout_s: how long a collective waits for the other ranks before it fails (a rank
            that died or hangs); each rank then raises instead of waiting forever.
        backend: ``"gloo"`` or ``"nccl"``; default nccl when CUDA is available, else gloo.
        init_method: e.g. ``"file:///tmp/x"``; default ``env://`` (torchrun's variables).
    """
    timeout_s = check_positive_float("timeout_s", timeout_s)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or dist.is_initialized():
        return rank_world()
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    with translate_dist_errors(f"rank {os.environ.get('RANK', '?')}: joining the group"):
        dist.init_process_group(
            backend,
            init_method=init_method,
            rank=int(os.environ.get("RANK", "0")),
            world_size=world,
            timeout=timedelta(seconds=timeout_s),
        )
    return rank_world()


def shutdown_distributed(*, wait: bool = True) -> None:
    """Leave the process group (no-op without one).

    With ``wait`` the ranks first meet in a barrier, so none tears its connections down
    while another still talks over them (gloo may abort the late rank otherwise); pass
    False after an error, when another rank may be gone.
    """
    if dist.is_available() and dist.is_initialized():
        if wait and dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()


@contextmanager
def translate_dist_errors(what: str) -> Iterator[None]:
    """Turn a failed collective into a :class:`DistributedRunError` that says what happened."""
    try:
        yield
    except DistributedRunError:
        raise
    except (dist.DistError, RuntimeError) as exc:
        text = str(exc)
        lowered = text.lower()
        markers = ("gloo", "nccl", "connection", "timed out", "timeout", "peer", "socket")
        if isinstance(exc, dist.DistError) or any(m in lowered for m in markers):
            first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            raise DistributedRunError(
                f"{what}: another rank stopped, or did not answer within the timeout "
                f"({first[:300]})"
            ) from exc
        raise


def all_reduce(values: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """``values`` reduced over ranks (``"sum"`` or ``"max"``); itself in one process."""
    if not is_distributed():
        return values
    reduce_op = dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX
    out = values.clone()
    dist.all_reduce(out, op=reduce_op)
    return out


def gather_1d(values: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's 1-D ``values`` (lengths may differ) in rank order."""
    if not is_distributed():
        return values
    _, world = rank_world()
    n = torch.tensor([values.shape[0]], dtype=torch.int64, device=values.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    longest = int(max(int(s) for s in sizes))
    padded = torch.zeros(longest, dtype=values.dtype, device=values.device)
    padded[: values.shape[0]] = values
    parts = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s)] for p, s in zip(parts, sizes, strict=True)])
