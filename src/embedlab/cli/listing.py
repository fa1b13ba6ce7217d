"""``embedlab list [FAMILY]``: the registries, one line per component."""

from __future__ import annotations

import importlib
import inspect
from typing import Annotated, Any

import typer

from embedlab._validation import check_choice
from embedlab.cli._common import console, describe_error, fail

__all__ = ["FAMILIES", "list_components", "registry_rows"]

#: family -> (module holding the registry, registry name); imported only when listed
FAMILIES: dict[str, tuple[str, str]] = {
    "tables": ("embedlab.tables", "TABLES"),
    "models": ("embedlab.models", "MODELS"),
    "losses": ("embedlab.losses", "LOSSES"),
    "indexes": ("embedlab.index", "INDEXES"),
    "data": ("embedlab.data", "DATA_SOURCES"),
    "clusterers": ("embedlab.cluster", "CLUSTERERS"),
    "autoencoders": ("embedlab.disentangle", "AUTOENCODERS"),
}


def _summary(item: Any) -> str:
    text = getattr(item, "summary", None)  # data sources carry a summary line
    if not isinstance(text, str):
        text = inspect.getdoc(item) or ""
    return text.strip().splitlines()[0] if text.strip() else ""


def registry_rows(family: str) -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every component registered in ``family``."""
    family = check_choice("FAMILY", family, list(FAMILIES))
    module, attr = FAMILIES[family]
    registry = getattr(importlib.import_module(module), attr)
    return [(name, _summary(registry.get(name))) for name in registry.names()]


def list_components(
    family: Annotated[
        str | None,
        typer.Argument(help=f"one of {', '.join(FAMILIES)} (default: all)", show_default=False),
    ] = None,
) -> None:
    """Print the registered components (the names specs and --methods accept).

    Example: embedlab list tables
    """
    try:
        families = (
            list(FAMILIES) if family is None else [check_choice("FAMILY", family, list(FAMILIES))]
        )
        rows = {f: registry_rows(f) for f in families}
    except ValueError as exc:
        raise fail(describe_error(exc)) from None
    for fam, items in rows.items():
        console.print(f"[bold]{fam}[/] ({len(items)})")
        width = max((len(name) for name, _ in items), default=0)
        for name, summary in items:
            console.print(f"  {name:<{width}}  {summary}", highlight=False, markup=False)
