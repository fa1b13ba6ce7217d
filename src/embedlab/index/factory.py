"""``index_factory``: the one parser of index spec strings.

Grammar: comma-separated top-level tokens (commas inside parentheses belong to the token).
The first token is the base index, each later one a stage wrapping what came before::

    Flat | Int8 | Binary | BEBR{bits} | BAE{bits} | ITQ{bits} | PQ{m}[x{nbits}]
    | OPQ{m}[x{nbits}] | Matryoshka{d}
    stages: Rerank | Rerank(Flat[, k_factor=N])

Multi-vector (MUVERA) specs put a ``MUVERA(r=R, k=K_SIM, p=D_PROJ[, d_final=N, seed=S,
fill_empty=false])`` token first; the FDEs go into the single-vector index described by the
tokens after it (default ``Flat``; built with ``dim`` = the FDE dimension and metric ``ip``),
and an optional last stage ``Rerank(Chamfer[, k_factor=N])`` re-scores the candidates with
exact Chamfer on the stored vectors::

    MUVERA(r=20,k=5,p=16),Rerank(Chamfer)          # FDEs in Flat, exact re-ranking
    MUVERA(r=20,k=5,p=16),PQ32,Rerank(Chamfer)     # FDEs product-quantised
    MUVERA(r=10,k=4,p=8),Binary                    # sign bits of the FDEs, no re-ranking

Any token may carry keyword hyper-parameters in parentheses, ``Int8(calibration=percentile)``,
``BEBR2(seed=3)``. Parametric tokens map to constructor keywords: ``BEBR2`` -> ``bits=2``,
``BAE256`` -> ``bits=256``, ``ITQ256`` -> ``bits=256``,
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
    "Flat, Int8, Binary, BEBR{bits}, BAE{bits}, ITQ{bits}, PQ{m}[x{nbits}], OPQ{m}[x{nbits}], "
    "Matryoshka{d} "
    "as the first token, optionally after a coarse token IVF{nlist} or HNSW{M}; "
    "Rerank(Flat[,k_factor=N]) as a later stage; "
    "MUVERA(r=R,k=K,p=P) before a base index (multi-vector) with Rerank(Chamfer[,k_factor=N]) "
    "as its last stage"
)

# token name -> (index class name, keyword names of its numeric groups)
_BASE_TOKENS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (re.compile(r"^Flat$"), "Flat", ()),
    (re.compile(r"^Int8$"), "Int8", ()),
    (re.compile(r"^Binary$"), "Binary", ()),
    (re.compile(r"^BEBR(\d+)$"), "BEBR", ("bits",)),
    (re.compile(r"^BAE(\d+)$"), "BAE", ("bits",)),
    (re.compile(r"^ITQ(\d+)$"), "ITQ", ("bits",)),
    (re.compile(r"^PQ(\d+)(?:x(\d+))?$"), "PQ", ("m", "nbits")),
    (re.compile(r"^OPQ(\d+)(?:x(\d+))?$"), "OPQ", ("m", "nbits")),
    (re.compile(r"^Matryoshka(\d+)$"), "Matryoshka", ("d",)),
]
# coarse first tokens: (pattern, class name, keyword of the number); a code token may follow
_COARSE_TOKENS: list[tuple[re.Pattern[str], str, str]] = [
    (re.compile(r"^IVF(\d+)$"), "IVF", "nlist"),
    (re.compile(r"^HNSW(\d+)$"), "HNSW", "M"),
]
_STAGES = ("Rerank",)
_COARSE_NAMES = frozenset(c for _, c, _ in _COARSE_TOKENS)
_MULTI = "MUVERA"
_MUVERA_KEYS = ("d_final", "fill_empty", "k", "p", "r", "seed")
_TOKEN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)


def _bad(token: str, why: str = "") -> ValueError:
    extra = f" ({why})" if why else ""
    return ValueError(
        f"index spec token {token!r} does not parse{extra}; valid forms: {VALID_FORMS}"
    )


def parse_index_spec(spec: str) -> list[tuple[str, dict[str, Any]]]:
    """Parse ``"Binary,Rerank(Flat,k_factor=20)"`` into ``[(class name, kwargs), ...]``.

    A multi-vector spec starts with ``("MUVERA", {...})``; its ``Rerank(Chamfer)`` stage is
    ``("Rerank", {"rescore": "Chamfer", ...})``.

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
    multi = False  # the spec starts with MUVERA: its inner base index comes at position 1
    for pos, token in enumerate(tokens):
        m = _TOKEN.match(token)
        if m is None:
            raise _bad(token)
        name, body = m.group(1), m.group(2)
        args = [] if body is None or not body.strip() else [a.strip() for a in body.split(",")]
        positional = [a for a in args if "=" not in a]
        keywords = [a for a in args if "=" in a]
        if name == _MULTI:
            if pos > 0:
                raise _bad(token, f"{_MULTI} must be the first token")
            if positional:
                raise _bad(token, "arguments must be key=value")
            try:
                _, kwargs = parse_spec(f"{name}({', '.join(keywords)})")
            except ValueError as exc:
                raise _bad(token, str(exc)) from None
            out.append((_MULTI, kwargs))
            multi = True
            continue
        if name in _STAGES:
            if pos == 0:
                raise _bad(token, f"{name} is a stage: it must follow a base index")
            if len(positional) > 1 or (positional and args[0] != positional[0]):
                raise _bad(token, "only the first argument may be positional")
            try:
                _, kwargs = parse_spec(f"{name}({', '.join(keywords)})")
            except ValueError as exc:
                raise _bad(token, str(exc)) from None
            rescore = positional[0] if positional else "Flat"
            if rescore == "Chamfer":
                if not multi:
                    raise _bad(
                        token,
                        f"{name}(Chamfer) re-scores vector sets: the spec must start with "
                        f"{_MULTI}(...), e.g. MUVERA(r=20,k=5,p=16),Rerank(Chamfer)",
                    )
                if pos != len(tokens) - 1:
                    raise _bad(token, f"{name}(Chamfer) must be the last stage")
            elif rescore != "Flat":
                also = " or Chamfer (after MUVERA)" if multi else ""
                raise _bad(token, f"{name} re-scores with Flat{also}, got {rescore!r}")
            elif multi and pos == 1:
                raise _bad(
                    token,
                    f"{name}(Flat) after {_MULTI} needs an inner base index first, "
                    "e.g. MUVERA(r=20,k=5,p=16),PQ32,Rerank(Flat)",
                )
            if positional:
                kwargs["rescore"] = rescore
            out.append((name, kwargs))
            continue
        first = 1 if multi else 0  # position of the first single-vector token
        coarse_before = pos == first + 1 and out[-1][0] in _COARSE_NAMES
        if pos > first and not coarse_before:
            raise _bad(token, "only Rerank stages may follow the base index")
        if positional:
            raise _bad(token, "arguments must be key=value")
        coarse = next(((p, c, g) for p, c, g in _COARSE_TOKENS if p.match(name)), None)
        if coarse is not None:
            if pos != first:
                raise _bad(token, f"{coarse[1]} is a coarse stage: it must come first")
            try:
                _, kwargs = parse_spec(f"{name}({', '.join(keywords)})")
            except ValueError as exc:
                raise _bad(token, str(exc)) from None
            if coarse[2] in kwargs:
                raise _bad(token, f"{coarse[2]} is given twice")
            kwargs[coarse[2]] = int(coarse[0].match(name).group(1))  # type: ignore[union-attr]
            out.append((coarse[1], kwargs))
            continue
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
    ``Rerank`` and to ``MUVERA``, ``seed=`` to trained indexes and to ``MUVERA``); a keyword
    no stage takes is an error. Keywords written in the spec win over ``kwargs``.

    A ``MUVERA(...)`` spec returns a :class:`embedlab.index.muvera.MUVERA` (a ``VectorIndex``
    with ``add_multi`` / ``search_multi``); ``metric`` is then that of the set vectors
    (``cos`` or ``ip``) and the inner index always uses ``ip`` on the FDEs.

    Example:
        >>> index = index_factory(64, "Binary,Rerank(Flat,k_factor=20)", metric="cos")
        >>> index.spec()
        'Binary,Rerank(Flat,k_factor=20)'
        >>> index_factory(384, "MUVERA(r=20,k=5,p=16),Rerank(Chamfer)").spec()
        'MUVERA(r=20,k=5,p=16),Flat,Rerank(Chamfer,k_factor=10)'
    """
    metric = normalize_metric(metric)
    parsed = parse_index_spec(spec)
    used: set[str] = set()
    if parsed[0][0] == _MULTI:
        index: VectorIndex = _build_muvera(dim, parsed, metric, kwargs, used)
    else:
        index = _build_chain(dim, parsed, metric, kwargs, used)
    unused = sorted(set(kwargs) - used)
    if unused:
        raise ValueError(f"keyword {unused[0]!r} is taken by no stage of the index spec {spec!r}")
    return index


def _check_token_keys(name: str, given: dict[str, Any], accepted: set[str]) -> None:
    bad = sorted(set(given) - accepted)
    if bad:
        raise ValueError(
            f"unknown hyper-parameter {bad[0]!r} for {name}; "
            f"valid: {', '.join(sorted(accepted)) or 'none'}"
        )


def _build_chain(
    dim: int,
    parsed: list[tuple[str, dict[str, Any]]],
    metric: Metric,
    kwargs: dict[str, Any],
    used: set[str],
) -> VectorIndex:
    """A base index and its ``Rerank(Flat)`` stages; records the ``kwargs`` it used.

    A coarse first token (``IVF4096``, ``HNSW32``) gets the code index built from the token
    after it (``Flat`` when a stage or nothing follows) as its ``code=`` argument.
    """
    if parsed[0][0] in _COARSE_NAMES:
        has_code = len(parsed) > 1 and parsed[1][0] not in _STAGES
        code_token = parsed[1] if has_code else ("Flat", {})
        code = _build_chain(dim, [code_token], metric, kwargs, used)
        coarse_cls: Any = INDEXES.get(parsed[0][0])
        accepted = _accepted(coarse_cls) - {"metric", "code"}
        _check_token_keys(coarse_cls.index_name, parsed[0][1], accepted)
        extra = {k: v for k, v in kwargs.items() if k in accepted}
        used.update(extra)
        first: VectorIndex = coarse_cls(dim, metric=metric, code=code, **{**extra, **parsed[0][1]})
        return _build_stages(dim, first, parsed[2 if has_code else 1 :], metric, kwargs, used)
    first_cls = INDEXES.get(parsed[0][0])
    accepted = _accepted(first_cls) - {"metric", "base"}
    _check_token_keys(first_cls.index_name, parsed[0][1], accepted)
    extra = {k: v for k, v in kwargs.items() if k in accepted}
    used.update(extra)
    index = first_cls(dim, metric=metric, **{**extra, **parsed[0][1]})
    return _build_stages(dim, index, parsed[1:], metric, kwargs, used)


def _build_stages(
    dim: int,
    index: VectorIndex,
    parsed: list[tuple[str, dict[str, Any]]],
    metric: Metric,
    kwargs: dict[str, Any],
    used: set[str],
) -> VectorIndex:
    """Wrap ``index`` in the stages ``parsed`` (``Rerank(Flat)``), in order."""
    classes: list[Any] = [INDEXES.get(name) for name, _ in parsed]
    for cls, (_, token_kwargs) in zip(classes, parsed, strict=True):
        accepted = _accepted(cls) - {"metric", "base"}
        extra = {k: v for k, v in kwargs.items() if k in accepted}
        used.update(extra)
        _check_token_keys(cls.index_name, token_kwargs, accepted)
        index = cls(dim, metric=metric, base=index, **{**extra, **token_kwargs})
    return index


def _build_muvera(
    dim: int,
    parsed: list[tuple[str, dict[str, Any]]],
    metric: Metric,
    kwargs: dict[str, Any],
    used: set[str],
) -> VectorIndex:
    """``MUVERA(...)``, the inner chain on the FDEs (default Flat), ``Rerank(Chamfer)``."""
    from embedlab.index.muvera import FDE, MUVERA

    token_kwargs = dict(parsed[0][1])
    _check_token_keys(_MULTI, token_kwargs, set(_MUVERA_KEYS))
    rest = parsed[1:]
    stage: dict[str, Any] = {}
    if rest and rest[-1][0] == "Rerank" and rest[-1][1].get("rescore") == "Chamfer":
        stage = {k: v for k, v in rest[-1][1].items() if k != "rescore"}
        _check_token_keys("Rerank(Chamfer)", stage, {"k_factor"})
        stage["rerank"] = "Chamfer"
        rest = rest[:-1]
    extra: dict[str, Any] = {k: kwargs[k] for k in ("seed", "storage") if k in kwargs}
    used.update(extra)
    encoder_args: dict[str, Any] = {
        k: v for k, v in {**extra, **token_kwargs}.items() if k in _MUVERA_KEYS
    }
    fde_dim = FDE(dim, **encoder_args).output_dim  # validates r, k, p, ... early
    inner = _build_chain(fde_dim, rest or [("Flat", {})], "ip", kwargs, used)
    return MUVERA(dim, metric=metric, inner=inner, **{**extra, **token_kwargs, **stage})
