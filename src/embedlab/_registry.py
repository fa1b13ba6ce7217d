"""Registries (name -> class) and the one parser for method spec strings.

A spec string names a registered component and, optionally, keyword
hyper-parameters: ``"qr"``, ``"qr(op=add)"``, ``"ue(probes=2, seed=3)"``.
Values are ints, floats, bools (``true``/``false``), ``none``, quoted strings, lists
(``dims=[4, 8, 16]``) or bare strings: see :func:`parse_spec`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Registry", "parse_spec", "split_specs"]

T = TypeVar("T")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)


class Registry(Generic[T]):
    """Maps names to classes of one family (tables, models, datasets...).

    Example:
        >>> reg: Registry[object] = Registry("table")
        >>> @reg.register("dummy")
        ... class Dummy: ...
        >>> reg.get("dummy") is Dummy
        True
    """

    def __init__(self, family: str) -> None:
        self.family = family
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        if not _NAME.match(name):
            raise ValueError(f"{self.family} name must be an identifier, got {name!r}")

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.family} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.family} {name!r}; valid {_plural(self.family)}: "
                f"{', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)


def _plural(word: str) -> str:
    return word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")


def _scalar(text: str) -> Any:
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return t


class _Args:
    """Recursive-descent reader of ``key=value, ...``: the spec grammar.

    ``value := 'quoted' | "quoted" | [value, ...] | bare``; a bare value runs to the next
    ``,`` / ``]`` outside parentheses and is an int, float, bool (``true``/``false``), ``none``,
    or else a string (``op=add``, ``hidden=400-400``). Quoted values are always strings.
    """

    def __init__(self, text: str, spec: str) -> None:
        self.text, self.spec, self.pos = text, spec, 0

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{what} at position {self.pos} of the arguments in {self.spec!r}")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while self.peek():
            start = self.pos
            eq = self.text.find("=", start)
            comma = self.text.find(",", start)
            if eq < 0 or (0 <= comma < eq):
                part = self.text[start : comma if comma >= 0 else len(self.text)].strip()
                raise ValueError(f"spec arguments must be key=value, got {part!r} in {self.spec!r}")
            key = self.text[start:eq].strip()
            if not _NAME.match(key):
                raise ValueError(
                    f"spec argument names must be identifiers, got {key!r} in {self.spec!r}"
                )
            if key in out:
                raise ValueError(f"spec argument {key!r} is given twice in {self.spec!r}")
            self.pos = eq + 1
            out[key] = self.value()
            nxt = self.peek()
            if nxt == ",":
                self.pos += 1
            elif nxt:
                raise self.fail(f"expected ',' after the value of {key!r}, got {nxt!r}")
        return out

    def value(self) -> Any:
        ch = self.peek()
        if ch in ("'", '"'):
            end = self.text.find(ch, self.pos + 1)
            if end < 0:
                raise self.fail(f"unterminated {ch} string")
            out = self.text[self.pos + 1 : end]
            self.pos = end + 1
            return out
        if ch == "[":
            self.pos += 1
            items: list[Any] = []
            while self.peek() != "]":
                if not self.peek():
                    raise self.fail("unterminated '[' list")
                items.append(self.value())
                if not self.peek():
                    raise self.fail("unterminated '[' list")
                if self.peek() == ",":
                    self.pos += 1
                elif self.peek() != "]":
                    raise self.fail(f"expected ',' or ']' in a list, got {self.peek()!r}")
            self.pos += 1
            return items
        start, depth = self.pos, 0
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            elif depth == 0 and c in ",]":
                break
            self.pos += 1
        raw = self.text[start : self.pos]
        if not raw.strip():
            raise self.fail("empty value")
        return _scalar(raw)


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Parse ``"name(key=value, ...)"`` into ``(name, {key: value})``.

    Values: ints, floats, ``true``/``false``, ``none``, quoted strings (``'a,b'``), lists
    (``dims=[4, 8, 16]``, nested allowed) and bare strings (``op=add``).

    Example:
        >>> parse_spec("matryoshka(dims=[8, 16], name='a,b', fast=true)")
        ('matryoshka', {'dims': [8, 16], 'name': 'a,b', 'fast': True})

    Raises:
        ValueError: the spec does not parse; the message shows it.
    """
    m = _SPEC.match(spec)
    if m is None:
        raise ValueError(f"spec must look like name or name(key=value, ...), got {spec!r}")
    name, body = m.group(1), m.group(2)
    if body is None or not body.strip():
        return name, {}
    return name, _Args(body, spec).kwargs()


def split_specs(text: str) -> list[str]:
    """Split a comma-separated list of specs, keeping commas inside parentheses, brackets and
    quotes."""
    out: list[str] = []
    depth = 0
    quote = ""
    cur: list[str] = []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced {ch!r} in {text!r}")
        if ch == "," and depth == 0 and not quote:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if quote:
        raise ValueError(f"unterminated {quote} string in {text!r}")
    if depth != 0:
        raise ValueError(f"unbalanced '(' or '[' in {text!r}")
    out.append("".join(cur).strip())
    if any(not s for s in out):
        raise ValueError(f"empty entry in list {text!r}")
    return out
