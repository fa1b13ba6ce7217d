"""Console output, error lines and option checks shared by the CLI command groups.

Every error a command reports goes through :func:`fail`: one ``error: ...`` line on
stderr and exit code 2. Options are checked up front with the ``check_*`` helpers
below (and :mod:`embedlab._validation`), before any data is loaded or model trained;
each message names the option and the value that broke the rule.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Protocol

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from embedlab._registry import split_specs
from embedlab.bench import (
    SUMMARY_COLUMNS,
    BenchRecord,
    LocalEngine,
    RayEngine,
    RecordWriter,
    summary_notes,
    summary_rows,
)

# Wide enough for the summary table when the output is a file or a pipe (rich's default is 80).
console = Console(width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)


EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
_debug = False


def set_debug(on: bool) -> None:
    """``--debug``: :func:`fail` also prints the traceback of the exception being handled."""
    global _debug
    _debug = on


def fail(message: str, *, code: int = EXIT_ERROR) -> typer.Exit:
    """Print ``message`` as one ``error: ...`` line on stderr; return the exit to raise.

    Newlines and runs of spaces in ``message`` are folded so the error stays on one
    line (and is never wrapped); ``[...]`` in it is printed as is, not as markup.
    Under ``--debug``, when called in an ``except`` block, the traceback comes first.

    Example:
        >>> raise fail(f"--lr must be finite, got {lr}")  # doctest: +SKIP
    """
    exc = sys.exc_info()[1]
    if _debug and exc is not None:
        sys.stderr.write("".join(traceback.format_exception(exc)))
        sys.stderr.flush()
    line = " ".join(str(message).split()) or "unknown error"
    err_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=code)


# Exceptions whose message is written for users (by embedlab._validation and the loaders).
_USER_ERRORS = (ValueError, TypeError, OSError, ImportError)


def describe_error(exc: BaseException) -> str:
    """The one-line message of an uncaught exception.

    ``ValueError`` / ``TypeError`` / ``ImportError`` messages are shown as they are;
    ``OSError`` as ``path: reason``; anything else is an internal error and names its type.
    """
    if isinstance(exc, OSError) and exc.strerror:
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        return f"{where}: {exc.strerror}" if where else exc.strerror
    text = " ".join(str(exc).split())
    if isinstance(exc, _USER_ERRORS) and text:
        return text
    name = type(exc).__name__
    detail = f"{name}: {text}" if text else name
    return f"{detail} (internal error; rerun with --debug for the traceback)"


def check_finite_float(option: str, value: float) -> float:
    """``value`` must be a finite number (any sign): ``--beta nan`` is refused."""
    if not math.isfinite(value):
        raise ValueError(f"{option} must be a finite number, got {value}")
    return value


def check_in_file(what: str, path: Path) -> Path:
    """An input that must be an existing file (not a folder)."""
    if path.is_dir():
        raise ValueError(f"{what} must be a file, got the folder {path}")
    if not path.is_file():
        raise ValueError(f"{what} {path} does not exist")
    return path


def _writable(path: Path) -> bool:
    """This process may write ``path`` (a file), or create files in it (a folder)."""
    mode = os.W_OK | os.X_OK if path.is_dir() else os.W_OK
    return os.access(path, mode)


def _check_can_create(option: str, path: Path) -> None:
    """The nearest existing folder above ``path`` must be a writable folder."""
    above = path.absolute().parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise ValueError(f"{option} {path} cannot be created: {above} is a file, not a folder")
    if not _writable(above):
        raise ValueError(f"{option} {path} cannot be written: no write permission on {above}")


def check_out_file(option: str, path: Path | None) -> None:
    """An output file (``--json``, ``-o x.npy``): not a folder, and it can be written."""
    if path is None:
        return
    if path.is_dir():
        raise ValueError(f"{option} must be a file path, got the folder {path}")
    if path.exists():
        if not _writable(path):
            raise ValueError(f"{option} {path} cannot be written: no write permission")
        return
    _check_can_create(option, path)


def check_out_dir(option: str, path: Path | None) -> None:
    """An output folder (``-o DIR``): not a file, and it can be created or written into."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} must be a folder, got the file {path}")
    if path.is_dir():
        if not _writable(path):
            raise ValueError(f"{option} {path} cannot be written: no write permission")
        return
    _check_can_create(option, path)


def parse_floats(option: str, text: str) -> list[float]:
    """``"10,100"`` -> ``[10.0, 100.0]``; at least one number, all finite."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{option} must be comma-separated numbers, got {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{option} must be comma-separated finite numbers, got {text!r}")
    return values


def parse_ints(option: str, text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; at least one integer."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{option} must be comma-separated integers, got {text!r}") from None
    if not values:
        raise ValueError(f"{option} must be comma-separated integers, got {text!r}")
    return values


def parse_specs(text: str) -> list[str]:
    return split_specs(text)


def print_summary(title: str, records: Sequence[BenchRecord]) -> None:
    table = Table(title=title, title_justify="left")
    for col in SUMMARY_COLUMNS:
        table.add_column(col, justify="left" if col in ("method", "status") else "right")
    for row in summary_rows(records):
        table.add_row(*row)
    console.print(table)
    for note in summary_notes(records):
        console.print(f"  [dim]{note}[/]", highlight=False)


class RecordSaver:
    """The ``on_record`` callback of a suite: append each record to ``--json`` (a header
    line first, see :class:`~embedlab.bench.RecordWriter`) and print ``line(record)``.

    ``recorded`` holds the records already in the file, read before the header was
    written (empty with ``rerun`` or for stdout): pass it to the suite to skip them. As a
    context manager, human output goes to stderr while records go to stdout (``--json -``).
    """

    def __init__(
        self,
        json_out: Path | None,
        *,
        quiet: bool,
        line: Callable[[BenchRecord], str],
        rerun: bool = False,
        ctx: typer.Context | None = None,
    ) -> None:
        self.quiet, self.line = quiet, line
        self.writer = None if json_out is None else RecordWriter(json_out)
        self.recorded: list[BenchRecord] = []
        self._stderr = console.stderr
        if self.writer is not None:
            if not rerun:
                self.recorded = self.writer.recorded()
            self.writer.write_header(invocation(ctx))

    def __call__(self, record: BenchRecord) -> None:
        if self.writer is not None:
            self.writer.write(record)
        if not self.quiet:
            console.print(f"  {self.line(record)}", highlight=False)

    def __enter__(self) -> RecordSaver:
        if self.writer is not None and self.writer.to_stdout:
            console.stderr = True
        return self

    def __exit__(self, *exc: object) -> None:
        console.stderr = self._stderr

    def done(self, records: Sequence[BenchRecord]) -> None:
        """The closing lines: runs skipped as already recorded, where the records went."""
        if self.writer is None:
            return
        old = {id(r) for r in self.recorded}
        skipped = sum(id(r) in old for r in records)
        if skipped:
            console.print(
                f"skipped {skipped} run(s) already recorded in {self.writer.path} "
                "(--rerun runs them again)",
                highlight=False,
            )
        if not self.writer.to_stdout:
            console.print(f"records appended to {self.writer.path}", highlight=False)


record_saver = RecordSaver  # the name the command modules use


def invocation(ctx: typer.Context | None = None) -> str:
    """The running command as typed: its path and the options given on the command line
    (``sys.argv`` without a context)."""
    if ctx is None:
        return shlex.join(["embedlab", *sys.argv[1:]])
    parts: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        source = ctx.get_parameter_source(name)
        if source is None or source.name != "COMMANDLINE":
            continue
        value = ctx.params.get(name)
        opts: list[str] = list(getattr(param, "opts", []))
        if not opts or not opts[0].startswith("-"):
            parts.append(str(value))
        elif getattr(param, "is_flag", False):
            parts.append(opts[0] if value else (getattr(param, "secondary_opts", []) or opts)[0])
        else:
            parts += [opts[0], str(value)]
    return " ".join([ctx.command_path, *([shlex.join(parts)] if parts else [])])


JsonOut = Annotated[
    Path | None,
    typer.Option(
        "--json",
        help="append JSON-lines records to this file ('-': stdout), after a header line; "
        "runs already in it are skipped unless --rerun",
    ),
]
Rerun = Annotated[
    bool, typer.Option("--rerun", help="run again the runs already recorded in --json")
]
UseRay = Annotated[
    bool,
    typer.Option(
        "--ray", help="run each (method, compression, seed) as a Ray task (needs the ray extra)"
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--address", help="with --ray: cluster to join, e.g. auto (default: start a local one)"
    ),
]
CpusPerRun = Annotated[
    int | None,
    typer.Option(
        "--cpus-per-run",
        help="CPUs and threads of each run (default: 1 with --ray, else torch's default); "
        "the same count with and without --ray gives identical records",
    ),
]


def check_json_out(path: Path | None) -> None:
    """``--json``: a file :func:`check_out_file` accepts, or ``-`` (stdout)."""
    if path is not None and str(path) != "-":
        check_out_file("--json", path)


def grid_engine(
    ray: bool, address: str | None, cpus_per_run: int | None
) -> LocalEngine | RayEngine | None:
    """The engine of ``[--ray [--address A]] [--cpus-per-run N]``."""
    from embedlab._validation import check_int
    from embedlab.bench._ray_grid import import_ray

    if cpus_per_run is not None:
        check_int("--cpus-per-run", cpus_per_run, min_value=1)
    if not ray:
        if address is not None:
            raise ValueError(f"--address needs --ray, got --address {address} without it")
        return None if cpus_per_run is None else LocalEngine(threads=cpus_per_run)
    import_ray("--ray")
    return RayEngine(address=address, cpus_per_run=cpus_per_run or 1)


class Advance(Protocol):
    """``advance(done, total)`` moves the bar; ``total=None`` is unknown (a spinner-like bar),
    ``description`` renames the task (a new stage)."""

    def __call__(self, done: int, total: int | None, description: str | None = None) -> None: ...


@contextmanager
def progress_bar(description: str, *, quiet: bool) -> Iterator[Advance]:
    """A rich bar on stderr (done/total, elapsed, ETA); yields ``advance(done, total)``.

    Silent when ``quiet`` or when stderr is not a terminal (clean output in pipes and logs).
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet or not sys.stderr.isatty(),
    )
    task = bar.add_task(description, total=None)

    def advance(done: int, total: int | None, description: str | None = None) -> None:
        if description is not None:
            bar.update(task, description=description)
        bar.update(task, completed=done, total=total)

    with bar:
        yield advance


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (0 where unknown).

    Linux: ``VmHWM`` of ``/proc/self/status`` (``getrusage``'s ``ru_maxrss`` also counts the
    memory of a parent this process was forked from before ``exec``).
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024
