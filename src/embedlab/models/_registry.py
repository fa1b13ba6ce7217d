"""The one registry of CTR models and the spec-string constructor."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from embedlab._registry import Registry, parse_spec
from embedlab._validation import check_keywords
from embedlab.models._base import CTRModel
from embedlab.tables import EmbeddingTable

__all__ = ["MODELS", "make_model", "register_model"]

MODELS: Registry[type[CTRModel]] = Registry("model")

_M = TypeVar("_M", bound=type[CTRModel])


def register_model(name: str) -> Callable[[_M], _M]:
    """Class decorator: register a :class:`CTRModel` subclass under ``name``."""

    def deco(cls: _M) -> _M:
        cls.name = name
        MODELS.register(name)(cls)
        return cls

    return deco


def hyper_parameters(cls: type[CTRModel]) -> list[str]:
    """The keyword hyper-parameters ``cls.__init__`` accepts (everything after ``table``)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return sorted(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def make_model(spec: str, table: EmbeddingTable, **kwargs: Any) -> CTRModel:
    """Build a model by name or spec string around ``table``.

    Spec values are parsed by :func:`embedlab._registry.parse_spec`; layer sizes
    are written ``hidden=400-400-400``. Python keyword arguments override the spec.

    Example:
        >>> from embedlab.tables import Field, make_table
        >>> table = make_table("full", [Field("user", 50), Field("item", 80)], dim=8)
        >>> model = make_model("deepfm(hidden=64-32, dropout=0.1)", table)
        >>> model.mlp[0].out_features
        64
    """
    name, spec_kwargs = parse_spec(spec)
    cls = MODELS.get(name)
    merged = {**spec_kwargs, **kwargs}
    check_keywords(f"model {name!r}", merged, hyper_parameters(cls))
    return cls(table, **merged)
