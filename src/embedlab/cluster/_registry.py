"""The one registry of clusterers and the spec-string constructor ``make_clusterer``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from embedlab._registry import Registry, parse_spec
from embedlab._validation import check_choice, check_keywords
from embedlab.cluster._base import Clusterer

__all__ = ["CLUSTERERS", "make_clusterer", "register_clusterer"]

CLUSTERERS: Registry[type[Clusterer]] = Registry("clusterer")

_C = TypeVar("_C", bound=type[Clusterer])


def register_clusterer(name: str) -> Callable[[_C], _C]:
    """Class decorator: register a :class:`Clusterer` subclass under ``name``."""

    def deco(cls: _C) -> _C:
        cls.name = name
        CLUSTERERS.register(name)(cls)
        return cls

    return deco


def make_clusterer(spec: str, *, n_clusters: int, seed: int = 0, **kwargs: Any) -> Clusterer:
    """Build a clusterer by name or spec string, e.g. ``"depict(epochs=20)"``.

    ``kwargs`` override the spec's values; ``n_clusters`` and ``seed`` are set here only.

    Args:
        spec: a registered name (see ``CLUSTERERS.names()``) with optional ``key=value`` pairs.
        n_clusters: the number of clusters, ``>= 2`` (and at most the number of samples).
        seed: seeds every random choice of the method.

    Example:
        >>> from embedlab.cluster import make_clusterer
        >>> make_clusterer("kmeans(n_init=3)", n_clusters=4).n_init
        3
    """
    name, spec_kwargs = parse_spec(spec)
    cls = CLUSTERERS.get(check_choice("clusterer", name, CLUSTERERS.names()))
    merged = {**spec_kwargs, **kwargs}
    params = inspect.signature(cls.__init__).parameters
    valid = [k for k in params if k not in ("self", "n_clusters", "seed")]
    check_keywords(f"clusterer {name!r}", merged, valid)
    return cls(**{**merged, "n_clusters": n_clusters, "seed": seed})
