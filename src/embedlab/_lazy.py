"""Lazy re-exports for package ``__init__`` modules (PEP 562).

A package lists ``{public name: defining module}``; the module is imported the first time
one of its names is read, so importing the package costs nothing until then (the CLI's
``--help`` and ``import embedlab.index`` stay free of torch and pandas).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, namespace: dict[str, Any], names: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose ``names`` map to their modules.

    Example:
        >>> ns: dict[str, Any] = {}
        >>> getattr_, _ = lazy_exports("pkg", ns, {"sqrt": "math"})
        >>> getattr_("sqrt")(4.0), "sqrt" in ns
        (2.0, True)
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
