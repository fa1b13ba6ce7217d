"""``embedlab list``: every registry, one line per component."""

from __future__ import annotations

from typer.testing import CliRunner

from embedlab.cli import app
from embedlab.cli.listing import FAMILIES, registry_rows

runner = CliRunner()


def test_every_family_lists_its_registry() -> None:
    from embedlab.tables import TABLES

    rows = registry_rows("tables")
    assert [name for name, _ in rows] == TABLES.names()
    assert all(summary for _, summary in rows)  # every table has a one-line docstring
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for family in FAMILIES:
        assert f"{family} (" in result.output
    assert "qr " in runner.invoke(app, ["list", "tables"]).output


def test_unknown_family_is_one_error_line() -> None:
    result = runner.invoke(app, ["list", "nope"])
    assert result.exit_code == 2
    assert (
        "FAMILY must be one of autoencoders, clusterers, data, indexes, losses, models, tables"
        in result.output
    )
