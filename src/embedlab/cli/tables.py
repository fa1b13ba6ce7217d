"""``embedlab tables export`` / ``embedlab tables info``: deployable compressed tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from embedlab.cli._common import console

__all__ = ["app", "export_command", "info_command"]

app = typer.Typer(
    help="Export trained embedding tables in their compressed form.", no_args_is_help=True
)


@app.command("export")
def export_command(
    run: Annotated[
        Path,
        typer.Argument(
            help="run folder (config.json + model.safetensors) or its model.safetensors"
        ),
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="the .safetensors file to write")],
) -> None:
    """Rebuild the trained table of RUN and write its deployable form to OUT.

    Example: embedlab tables export run/ -o table.safetensors
    """
    from embedlab.tables._runs import table_from_run

    table = table_from_run(run)
    path = table.export(out)
    size = path.stat().st_size
    console.print(
        f"exported {table.name} ({table.n_fields} fields, dim {table.dim}): {size} bytes "
        f"(memory_bytes {table.memory_bytes()}, full table {table.full_bytes}) -> {path}",
        highlight=False,
    )


@app.command("info")
def info_command(
    path: Annotated[Path, typer.Argument(help="an exported table (.safetensors)")],
) -> None:
    """Print the method, fields and byte counts of an exported table (checked as on load).

    Example: embedlab tables info table.safetensors
    """
    from embedlab.tables import export_info

    info = export_info(path)
    fields = ", ".join(f"{name}:{card}" for name, card in info["fields"])
    ratio = info["full_bytes"] / max(1, info["deployable_bytes"])
    console.print(
        f"method {info['method']}  dim {info['dim']}  compression {info['compression']:g}\n"
        f"fields {fields}\n"
        f"bytes: file {info['file_bytes']}, deployable {info['deployable_bytes']}, "
        f"full table {info['full_bytes']} ({ratio:.1f}x smaller)",
        highlight=False,
    )
