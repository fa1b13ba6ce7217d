from __future__ import annotations

import pytest

from embedlab._registry import Registry, parse_spec, split_specs


def test_register_and_get() -> None:
    reg: Registry[type] = Registry("widget")

    @reg.register("alpha")
    class Alpha:
        pass

    assert reg.get("alpha") is Alpha
    assert "alpha" in reg
    assert reg.names() == ["alpha"]
    assert len(reg) == 1


def test_unknown_name_lists_valid_names() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("b")(1)
    reg.register("a")(2)
    with pytest.raises(ValueError, match=r"unknown widget 'zzz'; valid widgets: a, b"):
        reg.get("zzz")


def test_duplicate_and_bad_names() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(2)
    with pytest.raises(ValueError, match="must be an identifier"):
        reg.register("not valid")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("qr", ("qr", {})),
        ("qr()", ("qr", {})),
        ("qr(op=add)", ("qr", {"op": "add"})),
        ("ue(probes=2, seed=3)", ("ue", {"probes": 2, "seed": 3})),
        ("x(a=1.5,b=true,c=False,d='s')", ("x", {"a": 1.5, "b": True, "c": False, "d": "s"})),
        ("deepfm(hidden=400-400)", ("deepfm", {"hidden": "400-400"})),
        ("m(dims=[4,8,16])", ("m", {"dims": [4, 8, 16]})),
        ("m(dims=[ 4 , 8 ], x=[])", ("m", {"dims": [4, 8], "x": []})),
        ("m(g=[[1, 2], ['a,b', true]])", ("m", {"g": [[1, 2], ["a,b", True]]})),
        ('m(path="a=b, c", n=none)', ("m", {"path": "a=b, c", "n": None})),
        ("m(code=PQ(m=8), k=2)", ("m", {"code": "PQ(m=8)", "k": 2})),
    ],
)
def test_parse_spec(spec: str, expected: tuple[str, dict[str, object]]) -> None:
    assert parse_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "spec must look like"),
        ("1abc", "spec must look like"),
        ("qr(op)", "must be key=value"),
        ("qr(1x=2)", "must be identifiers"),
        ("qr(op=add", "spec must look like"),
        ("m(dims=[4,8)", "unterminated '\\[' list"),
        ("m(a='x)", "unterminated ' string"),
        ("m(a=1, a=2)", "given twice"),
        ("m(a=)", "empty value"),
        ("m(a=[1] 2)", "expected ',' after the value of 'a'"),
    ],
)
def test_parse_spec_errors(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_spec(spec)


def test_split_specs_keeps_parenthesised_commas() -> None:
    assert split_specs("full, qr(op=add,seed=1),ue") == ["full", "qr(op=add,seed=1)", "ue"]
    with pytest.raises(ValueError, match="unbalanced"):
        split_specs("qr(op=add")
    with pytest.raises(ValueError, match="unbalanced"):
        split_specs("qr)")
    with pytest.raises(ValueError, match="empty entry"):
        split_specs("qr,,ue")
    assert split_specs("mat(dims=[4,8]),x(s='a,b')") == ["mat(dims=[4,8])", "x(s='a,b')"]
    with pytest.raises(ValueError, match="unterminated"):
        split_specs("x(s='a)")
