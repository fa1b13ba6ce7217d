"""The ``embedlab`` command line: a thin shell over the library.

Exit codes: 0 success; 2 any error, printed as one ``error: ...`` line on stderr (bad
options and usage, missing or unreadable files, and failures inside the library alike);
130 interrupted (Ctrl-C). ``embedlab --debug ...`` or ``EMBEDLAB_DEBUG=1`` also prints
the Python traceback of an error.
"""

from __future__ import annotations

import errno
import os
from typing import Any

import typer
from typer.core import TyperGroup

from embedlab import __version__
from embedlab.cli import bench, data, graph, index, tables
from embedlab.cli._common import EXIT_INTERRUPTED, describe_error, fail, set_debug
from embedlab.cli.analyze import analyze
from embedlab.cli.demo import demo
from embedlab.cli.listing import list_components
from embedlab.cli.report import report

__all__ = ["RootGroup", "app", "main"]

DEBUG_ENV = "EMBEDLAB_DEBUG"

# Typer's own signals (exit, abort, usage errors) pass through the handler untouched.
_TYPER_SIGNALS: tuple[type[BaseException], ...] = (
    typer.Exit,
    typer.Abort,
    *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"),
)


def _debug_env() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class RootGroup(TyperGroup):
    """The root command group: every exception a command lets escape ends here.

    It becomes one ``error:`` line and exit code 2 (130 for Ctrl-C); with ``--debug`` the
    traceback is printed first. Living on the group (not only in :func:`main`) means
    ``CliRunner`` tests exercise the same handler as the installed ``embedlab`` script.
    """

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        set_debug(_debug_env())  # until the root callback reads --debug
        try:
            return super().invoke(ctx)
        except _TYPER_SIGNALS:
            raise
        except KeyboardInterrupt:
            raise fail("interrupted", code=EXIT_INTERRUPTED) from None
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                raise  # stdout closed by the reader (`| head`): Typer exits quietly
            raise fail(describe_error(exc)) from None
        finally:
            set_debug(False)


app = typer.Typer(
    name="embedlab",
    help="Learn, shrink, search and understand embeddings.",
    cls=RootGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(bench.app, name="bench")
app.add_typer(data.app, name="data")
app.add_typer(graph.app, name="graph")
app.add_typer(index.app, name="index")
app.add_typer(tables.app, name="tables")
app.command("report")(report)
app.command("analyze")(analyze)
app.command("demo")(demo)
app.command("list")(list_components)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"embedlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version"
    ),
    debug: bool = typer.Option(
        False,
        "--debug",
        envvar=DEBUG_ENV,
        help="on an error, also print the Python traceback",
    ),
) -> None:
    """Learn, shrink, search and understand embeddings."""
    set_debug(debug)


def main() -> None:
    """The ``embedlab`` script. Errors are handled by the root group (``RootGroup``);
    this catches what escapes before a command runs, with the same one-line contract."""
    try:
        app()
    except KeyboardInterrupt:
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        set_debug(_debug_env())
        raise SystemExit(fail(describe_error(exc)).exit_code) from None
