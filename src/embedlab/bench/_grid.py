"""The one grid runner of every suite: (method, compression, seed) runs, in this process or
as Ray tasks, skipping the runs already recorded.

A suite describes its grid as a :class:`Grid`: the runs, a module-level ``task(data, run)
-> BenchRecord`` and ``data(seed)``, which loads the data of a seed (called once per seed
that has runs left, in this process). :func:`run_grid` runs the pending runs one after the
other, or hands them to a :class:`~embedlab.bench.RayEngine`, and passes each record to
``on_record`` as soon as it is final. A :class:`Collector` may hold a record back until
another one is known (the CTR suite computes ratios against its ``full`` reference).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from embedlab._validation import check_int
from embedlab.bench._record import BenchRecord
from embedlab.bench._threads import limit_threads

if TYPE_CHECKING:
    from embedlab.bench._ray_grid import RayEngine

__all__ = [
    "Collector",
    "Grid",
    "GridClock",
    "GridRun",
    "GridTask",
    "LocalEngine",
    "format_seconds",
    "run_grid",
    "status_printer",
]


@dataclass(frozen=True)
class LocalEngine:
    """Run a grid in this process, one run after the other (the default engine).

    Args:
        threads: threads of torch, BLAS/OpenMP, faiss and numba inside each run; ``None``
            leaves them as they are. The same count as a :class:`RayEngine`'s
            ``cpus_per_run`` gives bit-identical records (parallel float sums depend on
            the thread count: 2 threads vs 1 moved Frappe AUCs by ~1e-6).
    """

    threads: int | None = None

    def __post_init__(self) -> None:
        if self.threads is not None:
            check_int("threads", self.threads, min_value=1)


@dataclass(frozen=True)
class GridRun:
    """One cell of a grid.

    Args:
        method: the method spec, as recorded.
        seed: the run's seed (model init, batches; the data split where the suite says so).
        compression: the budget asked for, or ``None`` where the method spec fixes it
            (retrieval: the record's ``compression`` is then measured, not a key).
    """

    method: str
    seed: int
    compression: float | None = None

    def label(self) -> str:
        """Text for status lines, e.g. ``"hash @ 10x seed 0"`` (no ``@`` part without a budget)."""
        at = "" if self.compression is None else f" @ {self.compression:g}x"
        return f"{self.method}{at} seed {self.seed}"


GridTask = Callable[[Any, GridRun], BenchRecord]


@dataclass(frozen=True)
class Grid:
    """A suite's grid: what :func:`run_grid` runs.

    Args:
        suite, dataset: the records' ``suite`` and ``dataset``.
        config_hash: :func:`~embedlab.bench.config_hash` of the settings that change results;
            stamped on every record and part of the key of a recorded run.
        runs: in run order (sequential runs go in this order; Ray gets them submitted so).
        task: ``task(data, run) -> BenchRecord``; module-level (Ray sends it by reference)
            and free of side effects on ``data`` (Ray hands it read-only arrays).
        data: ``data(seed)`` -> what ``task`` needs for that seed.
    """

    suite: str
    dataset: str
    config_hash: str
    runs: Sequence[GridRun]
    task: GridTask
    data: Callable[[int], Any]

    def matches(self, record: BenchRecord, run: GridRun) -> bool:
        """``record`` is the recorded result of ``run`` (same key)."""
        return (
            record.suite == self.suite
            and record.dataset == self.dataset
            and record.config_hash == self.config_hash
            and record.method == run.method
            and record.seed == run.seed
            and (run.compression is None or _same(record.compression, run.compression))
        )


def _same(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-9)


class Collector:
    """Decides when a measured record is final; this default passes each one on at once."""

    def known(self, record: BenchRecord) -> None:
        """``record`` was recorded by an earlier invocation (it is not run again)."""

    def add(self, record: BenchRecord) -> list[BenchRecord]:
        """A record just measured -> the records now final (it, held ones, or none)."""
        return [record]

    def rest(self) -> list[BenchRecord]:
        """The records still held when the grid ends (or stops on an error)."""
        return []


def run_grid(
    grid: Grid,
    *,
    recorded: Iterable[BenchRecord] = (),
    engine: LocalEngine | RayEngine | None = None,
    collector: Collector | None = None,
    on_record: Callable[[BenchRecord], None] | None = None,
    progress: str | None = None,
    announce: Callable[[str], None] | None = None,
) -> list[BenchRecord]:
    """Run the runs of ``grid`` that ``recorded`` does not hold yet.

    Args:
        grid: the suite's runs, task and data.
        recorded: records of earlier invocations (e.g. read from the ``--json`` file); a run
            with the same suite, dataset, method, compression, seed and config hash is
            skipped. Pass none to run everything again.
        engine: ``None`` or a :class:`LocalEngine` runs in this process, in order; a
            :class:`RayEngine` runs each run as a Ray task (records come back as they
            complete).
        collector: holds records back until they are final (default: none held).
        on_record: called with each final record (e.g. to append it to a file).
        progress: show a transient bar with this title (runs done of pending, the run
            going on); ``None`` for none (suites whose trainers draw their own bars).
        announce: called with one status line per run (``run 3/12 · qr @ 100x seed 0 ·
            elapsed 2m05s · ETA 6m10s``): when a run starts in this process, when it
            finishes under Ray. The ETA is the mean time per finished run times the runs
            left.

    Returns:
        One record per run of the grid, in run order: the recorded ones it skipped and
        the ones it measured.
    """
    collect = collector if collector is not None else Collector()
    previous = list(recorded)
    done: dict[GridRun, BenchRecord] = {}
    for run in grid.runs:
        hit = next((r for r in reversed(previous) if grid.matches(r, run)), None)
        if hit is not None:
            done[run] = hit
            collect.known(hit)
    pending = [run for run in grid.runs if run not in done]
    new: list[BenchRecord] = []  # in the order they became final

    def finish(records: list[BenchRecord]) -> None:
        for rec in records:
            new.append(rec)
            if on_record is not None:
                on_record(rec)

    from rich.progress import Progress

    clock = GridClock(len(pending))
    remote = engine is not None and not isinstance(engine, LocalEngine)
    with Progress(disable=progress is None, transient=True) as bar:
        task = bar.add_task(progress or "", total=len(pending))

        def started(run: GridRun) -> None:
            line = clock.status(run, starting=True)
            bar.update(task, description=f"{progress}: {line}")
            if announce is not None:
                announce(line)

        try:
            for run, record in _execute(grid, pending, engine, started):
                record.config_hash = grid.config_hash
                bar.advance(task)
                clock.finished += 1
                if remote and announce is not None:
                    announce(clock.status(run, starting=False))
                finish(collect.add(record))
        finally:
            finish(collect.rest())
    out: list[BenchRecord] = []
    for run in grid.runs:
        rec = done.get(run) or next((r for r in new if grid.matches(r, run)), None)
        if rec is not None:  # None: the grid stopped on an error before this run
            out.append(rec)
    return out


class GridClock:
    """Run i of N, elapsed time and the ETA of the whole grid, for status lines."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.finished = 0
        self.started = 0
        self.start = time.perf_counter()

    def status(self, run: GridRun, *, starting: bool) -> str:
        """``run 3/12 · qr @ 100x seed 0 · elapsed 2m05s · ETA 6m10s``."""
        elapsed = time.perf_counter() - self.start
        if starting:
            self.started += 1
            head = f"run {self.started}/{self.total}"
        else:
            head = f"finished {self.finished}/{self.total}"
        left = self.total - self.finished
        eta = "?" if self.finished == 0 else format_seconds(elapsed / self.finished * left)
        return f"{head} · {run.label()} · elapsed {format_seconds(elapsed)} · ETA {eta}"


def status_printer() -> Callable[[str], None]:
    """Print grid status lines to stderr (dim; plain text when stderr is not a terminal)."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)

    def show(line: str) -> None:
        console.print(f"[dim]{line}[/]")

    return show


def format_seconds(seconds: float) -> str:
    """``42s``, ``2m05s``, ``1h03m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _execute(
    grid: Grid,
    pending: Sequence[GridRun],
    engine: LocalEngine | RayEngine | None,
    started: Callable[[GridRun], None],
) -> Iterator[tuple[GridRun, BenchRecord]]:
    loaded: dict[int, Any] = {}

    def data(seed: int) -> Any:
        if seed not in loaded:
            loaded[seed] = grid.data(seed)
        return loaded[seed]

    if engine is None or isinstance(engine, LocalEngine):
        threads = None if engine is None else engine.threads
        for run in pending:
            started(run)
            with limit_threads(threads):
                record = grid.task(data(run.seed), run)
            yield run, record
        return
    yield from engine.map(grid.task, [(run, data(run.seed)) for run in pending])
