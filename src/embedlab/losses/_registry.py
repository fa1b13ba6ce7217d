"""The one registry of losses and the spec-string constructor ``make_loss``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from embedlab._registry import Registry, parse_spec
from embedlab._validation import check_choice, check_keywords
from embedlab.losses._base import MetricLoss

__all__ = ["LOSSES", "make_loss", "register_loss"]

LOSSES: Registry[type[MetricLoss]] = Registry("loss")

_L = TypeVar("_L", bound=type[MetricLoss])


def register_loss(name: str) -> Callable[[_L], _L]:
    """Class decorator: register a :class:`MetricLoss` subclass under ``name``."""

    def deco(cls: _L) -> _L:
        cls.name = name
        LOSSES.register(name)(cls)
        return cls

    return deco


def make_loss(
    spec: str, *, dim: int | None = None, n_classes: int | None = None, **kwargs: Any
) -> MetricLoss:
    """Build a loss by name or spec string, e.g. ``"triplet(margin=0.1, miner=semihard)"``.

    ``dim`` and ``n_classes`` reach the constructor only when it takes them
    (e.g. :class:`~embedlab.losses.EBVLoss` needs both; the error names the one
    missing). ``kwargs`` override the spec's values.

    Args:
        spec: a registered name (see ``LOSSES.names()``) with optional ``key=value`` pairs.
        dim: embedding dimension of the encoder.
        n_classes: number of training classes.

    Example:
        >>> from embedlab.losses import make_loss
        >>> make_loss("triplet(margin=0.1)", dim=64, n_classes=10).margin
        0.1
    """
    name, spec_kwargs = parse_spec(spec)
    cls = LOSSES.get(check_choice("loss", name, LOSSES.names()))
    params = inspect.signature(cls.__init__).parameters
    merged = {**spec_kwargs, **kwargs}
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not accepts_any:
        valid = [k for k in params if k not in ("self", "dim", "n_classes")]
        check_keywords(f"loss {name!r}", merged, valid)
    for key, value in (("dim", dim), ("n_classes", n_classes)):
        if key in params and key not in merged:
            if value is None and params[key].default is inspect.Parameter.empty:
                raise ValueError(f"loss {name!r} needs {key}: make_loss({spec!r}, {key}=...)")
            if value is not None:
                merged[key] = value
    return cls(**merged)
