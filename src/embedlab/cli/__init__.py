"""The ``embedlab`` command line: a thin shell over the library."""

from __future__ import annotations

import typer

from embedlab import __version__
from embedlab.cli import bench, graph, index
from embedlab.cli.analyze import analyze
from embedlab.cli.demo import demo
from embedlab.cli.report import report

__all__ = ["app", "main"]

app = typer.Typer(
    name="embedlab",
    help="Learn, shrink, search and understand embeddings.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(bench.app, name="bench")
app.add_typer(graph.app, name="graph")
app.add_typer(index.app, name="index")
app.command("report")(report)
app.command("analyze")(analyze)
app.command("demo")(demo)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"embedlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version"
    ),
) -> None:
    """Learn, shrink, search and understand embeddings."""


def main() -> None:
    app()
