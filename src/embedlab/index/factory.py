"""``index_factory``: the one parser of index spec strings.

Grammar: comma-separated top-level tokens (commas inside parentheses belong to the token).
The first token is the base index, each later one a stage wrapping what came before::

    Flat | Int8 | Binary | BEBR{bits} | PQ{m}[x{nbits}] | OPQ{m}[x{nbits}] | Matryoshka{d}
    stages: Rerank | Rerank(Flat[, k_factor=N])

Any token may carry keyword hyper-parameters in parentheses, ``Int8(calibration=percentile)``,
``BEBR2(seed=3)``. Parametric tokens map to constructor keywords: ``BEBR2`` -> ``bits=2``,
``PQ48x4`` -> ``m=48, nbits=4``, ``Matryoshka64`` -> ``d=64``.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from embedlab._registry import parse_spec, split_specs
from embedlab.index._base import INDEXES, Metric, VectorIndex, normalize_metric

__all__ = ["VALID_FORMS", "index_factory", "parse_index_spec"]

VALID_FORMS = (
    "Flat, Int8, Binary, BEBR{bits}, PQ{m}[x{nbits}], OPQ{m}[x{nbits}], Matryoshka{d} "
    "as the first token; Rerank(Flat[,k_factor=N]) as a later stage"
)

# token name -> (index class name, keyword names of its numeric groups)
_BASE_TOKENS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (re.compile(r"^Flat$"), "Flat", ()),
    (re.compile(r"^Int8$"), "Int8", ()),
    (re.compile(r"^Binary$"), "Binary", ()),
    (re.compile(r"^BEBR(\d+)$"), "BEBR", ("bits",)),
    (re.compile(r"^PQ(\d+)(?:x(\d+))?$"), "PQ", ("m", "nbits")),
    (re.compile(r"^OPQ(\d+)(?:x(\d+))?$"), "OPQ", ("m", "nbits")),
    (re.compile(r"^Matryoshka(\d+)$"), "Matryoshka", ("d",)),
]
_STAGES = ("Rerank",)
_TOKEN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)


def _bad(token: str, why: str = "") -> ValueError:
    extra = f" ({why})" if why else ""
    return ValueError(
        f"index spec token {token!r} does not parse{extra}; valid forms: {VALID_FORMS}"
    )


def parse_index_spec(spec: str) -> list[tuple[str, dict[str, Any]]]:
    """Parse ``"Binary,Rerank(Flat,k_factor=20)"`` into ``[(class name, kwargs), ...]``.

    Raises:
        ValueError: a token does not parse, a stage comes first, or a base comes later;
            the message lists the valid forms.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"index spec must be a non-empty string, got {spec!r}")
    try:
        tokens = split_specs(spec)
    except ValueError as exc:
        raise ValueError(f"index spec {spec!r} does not parse: {exc}") from None
    out: list[tuple[str, dict[str, Any]]] = []
    for pos, token in enumerate(tokens):
        m = _TOKEN.match(token)
        if m is None:
            raise _bad(token)
        name, body = m.group(1), m.group(2)
        args = [] if body is None or not body.strip() else [a.strip() for a in body.split(",")]
        positional = [a for a in args if "=" not in a]
        keywords = [a for a in args if "=" in a]
        if name in _STAGES:
            if pos == 0:
                raise _bad(token, f"{name} is a stage: it must follow a base index")
            if len(positional) > 1 or (positional and args[0] != positional[0]):
                raise _bad(token, "only the first argument may be positional")
            try:
                _, kwargs = parse_spec(f"{name}({', '.join(keywords)})")
            except ValueError as exc:
                raise _bad(token, str(exc)) from None
            if positional:
                if positional[0] != "Flat":
                    raise _bad(token, f"{name} re-scores with Flat, got {positional[0]!r}")
                kwargs["rescore"] = positional[0]
            out.append((name, kwargs))
            continue
        if pos > 0:
            raise _bad(token, "only Rerank stages may follow the base index")
        if positional:
            raise _bad(token, "arguments must be key=value")
        for pattern, cls_name, groups in _BASE_TOKENS:
            tm = pattern.match(name)
            if tm is None:
                continue
            try:
                _, kwargs = parse_spec(f"{name}({', '.join(keywords)})")
            except ValueError as exc:
                raise _bad(token, str(exc)) from None
            for key, value in zip(groups, tm.groups(), strict=True):
                if value is not None:
                    if key in kwargs:
                        raise _bad(token, f"{key} is given twice")
                    kwargs[key] = int(value)
            out.append((cls_name, kwargs))
            break
        else:
            raise _bad(token)
    return out


def _accepted(cls: type[VectorIndex]) -> set[str]:
    params = inspect.signature(cls.__init__).parameters
    return {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def index_factory(dim: int, spec: str, *, metric: Metric = "cos", **kwargs: Any) -> VectorIndex:
    """Build the index described by ``spec`` (see the module docstring for the grammar).

    Extra ``kwargs`` go to every stage whose constructor takes them (``storage=PATH`` to
    ``Rerank``, ``seed=`` to trained indexes); a keyword no stage takes is an error. Keywords
    written in the spec win over ``kwargs``.

    Example:
        >>> index = index_factory(64, "Binary,Rerank(Flat,k_factor=20)", metric="cos")
        >>> index.spec()
        'Binary,Rerank(Flat,k_factor=20)'
    """
    metric = normalize_metric(metric)
    parsed = parse_index_spec(spec)
    classes = [INDEXES.get(name) for name, _ in parsed]
    used: set[str] = set()
    index: VectorIndex | None = None
    for cls, (_, token_kwargs) in zip(classes, parsed, strict=True):
        accepted = _accepted(cls) - {"metric", "base"}
        extra = {k: v for k, v in kwargs.items() if k in accepted}
        used.update(extra)
        bad = sorted(set(token_kwargs) - accepted)
        if bad:
            raise ValueError(
                f"unknown hyper-parameter {bad[0]!r} for {cls.index_name}; "
                f"valid: {', '.join(sorted(accepted)) or 'none'}"
            )
        args = {**extra, **token_kwargs}
        if index is None:
            index = cls(dim, metric=metric, **args)
        else:
            args["base"] = index
            index = cls(dim, metric=metric, **args)
    unused = sorted(set(kwargs) - used)
    if unused:
        raise ValueError(f"keyword {unused[0]!r} is taken by no stage of the index spec {spec!r}")
    assert index is not None
    return index
