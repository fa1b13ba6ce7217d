"""Grids as Ray tasks: one task per (method, compression, seed), each with its thread budget.

The driver loads each seed's data once and ``ray.put``s it: tasks on a node then read the
same arrays from the object store without copies, no task parses the data files again,
and workers of a remote cluster (``address=``) need not see the driver's files. Records
come back as tasks complete (``ray.wait``). Workers must be able to import embedlab (a
local cluster inherits the driver's environment, ``PYTHONPATH`` included).
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from embedlab._validation import check_int
from embedlab.bench._record import BenchRecord
from embedlab.bench._threads import limit_threads

if TYPE_CHECKING:
    from embedlab.bench._grid import GridRun, GridTask

__all__ = ["RAY_INSTALL", "RayEngine", "import_ray"]

RAY_INSTALL = "pip install 'embedlab[ray]'"


def import_ray(what: str = "RayEngine") -> ModuleType:
    """The ``ray`` module, or ``ImportError("{what} needs Ray: pip install 'embedlab[ray]'")``."""
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise ImportError(f"{what} needs Ray: {RAY_INSTALL}") from None


@dataclass(frozen=True)
class RayEngine:
    """Run a benchmark grid as Ray tasks.

    Args:
        address: a running cluster to connect to (``ray.init(address=...)``, e.g.
            ``"auto"`` or ``"ray://head:10001"``); ``None`` starts a local cluster on this
            machine's CPUs (or uses the one this process already started).
        cpus_per_run: CPUs each task reserves (``num_cpus``) and the threads torch,
            BLAS/OpenMP, faiss and numba may use inside it.

    Example:
        >>> run_ctr_bench(load, config, engine=RayEngine(cpus_per_run=1))  # doctest: +SKIP
    """

    address: str | None = None
    cpus_per_run: int = 1

    def __post_init__(self) -> None:
        check_int("cpus_per_run", self.cpus_per_run, min_value=1)
        if self.address is not None and not (isinstance(self.address, str) and self.address):
            raise ValueError(f"address must be a non-empty string or None, got {self.address!r}")
        import_ray()

    def map(
        self, task: GridTask, items: Sequence[tuple[GridRun, Any]]
    ) -> Iterator[tuple[GridRun, BenchRecord]]:
        """Submit ``task(data, run)`` for every item; yield ``(run, record)`` as they complete.

        Each distinct data object is put in the object store once. On an error (or when
        the caller stops iterating) the tasks not yet finished are cancelled.
        """
        if not items:
            return
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=True)
        try:
            cpus = float(ray.cluster_resources().get("CPU", 0))
            if self.cpus_per_run > cpus:  # the tasks would wait forever
                raise ValueError(
                    f"cpus_per_run must be <= the cluster's {cpus:g} CPUs, got {self.cpus_per_run}"
                )
            refs: dict[int, Any] = {}
            remote = ray.remote(_run_task).options(num_cpus=self.cpus_per_run)
            pending: dict[Any, GridRun] = {}
            for run, data in items:
                if id(data) not in refs:
                    refs[id(data)] = ray.put(data)
                pending[remote.remote(task, refs[id(data)], run, self.cpus_per_run)] = run
            try:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    for ref in ready:
                        yield pending.pop(ref), ray.get(ref)
            finally:
                for ref in pending:
                    ray.cancel(ref)
        finally:
            if started:
                ray.shutdown()


def _run_task(task: GridTask, data: Any, run: GridRun, threads: int) -> BenchRecord:
    """Inside a Ray worker: one run under its thread budget."""
    if "numba" not in sys.modules:  # numba sizes its pool from this when first imported
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
    with limit_threads(threads), warnings.catch_warnings():
        # Arrays from the object store are read-only; tasks only read them.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return task(data, run)
