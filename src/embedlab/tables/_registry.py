"""The one registry of embedding-table methods and the budget-driven constructor."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from embedlab._registry import Registry, parse_spec
from embedlab._validation import check_keywords
from embedlab.fields import Field
from embedlab.tables._base import EmbeddingTable

__all__ = ["TABLES", "check_table_spec", "make_table", "register_table"]

TABLES: Registry[type[EmbeddingTable]] = Registry("table")

_T = TypeVar("_T", bound=type[EmbeddingTable])


def register_table(name: str) -> Callable[[_T], _T]:
    """Class decorator: register an :class:`EmbeddingTable` subclass under ``name``."""

    def deco(cls: _T) -> _T:
        cls.name = name
        TABLES.register(name)(cls)
        return cls

    return deco


def make_table(
    spec: str,
    fields: Sequence[Field],
    dim: int,
    *,
    compression: float = 1.0,
    seed: int = 0,
    **kwargs: Any,
) -> EmbeddingTable:
    """Build a table by name (or spec string ``"qr(op=add)"``) for a memory budget.

    Example:
        >>> from embedlab.tables import Field, make_table
        >>> fields = [Field("user", 957), Field("item", 4082)]
        >>> table = make_table("hash", fields, dim=16, compression=10)
        >>> table.memory_bytes() <= table.full_bytes / 10
        True
    """
    name, merged = check_table_spec(spec, **kwargs)
    return TABLES.get(name)(fields, dim, compression=compression, seed=seed, **merged)


def check_table_spec(spec: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """``(name, keywords)`` of a table spec, checked without building the table: the name
    is registered and every keyword is one of the method's (so a grid fails before it
    trains anything). ``kwargs`` override the spec's keywords.

    Example:
        >>> check_table_spec("qr(op=add)")
        ('qr', {'op': 'add'})
    """
    name, spec_kwargs = parse_spec(spec)
    cls = TABLES.get(name)
    merged = {**spec_kwargs, **kwargs}
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        fixed = ("self", "fields", "dim", "compression", "seed")
        check_keywords(f"table {name!r}", merged, [k for k in params if k not in fixed])
    return name, merged
