"""Registries (name -> class) and the one parser for method spec strings.

A spec string names a registered component and, optionally, keyword
hyper-parameters: ``"qr"``, ``"qr(op=add)"``, ``"ue(probes=2, seed=3)"``.
Values are parsed as int, float, bool (``true``/``false``) or left as strings.
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


def _parse_value(text: str) -> Any:
    t = text.strip()
    low = t.lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    return t


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Parse ``"name(key=value, ...)"`` into ``(name, {key: value})``.

    Raises:
        ValueError: the spec does not parse; the message shows it.
    """
    m = _SPEC.match(spec)
    if m is None:
        raise ValueError(f"spec must look like name or name(key=value, ...), got {spec!r}")
    name, body = m.group(1), m.group(2)
    kwargs: dict[str, Any] = {}
    if body is not None and body.strip():
        for part in body.split(","):
            if "=" not in part:
                raise ValueError(
                    f"spec arguments must be key=value, got {part.strip()!r} in {spec!r}"
                )
            key, value = part.split("=", 1)
            key = key.strip()
            if not _NAME.match(key):
                raise ValueError(
                    f"spec argument names must be identifiers, got {key!r} in {spec!r}"
                )
            kwargs[key] = _parse_value(value)
    return name, kwargs


def split_specs(text: str) -> list[str]:
    """Split a comma-separated list of specs, keeping commas inside parentheses."""
    out: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ')' in {text!r}")
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ValueError(f"unbalanced '(' in {text!r}")
    out.append("".join(cur).strip())
    if any(not s for s in out):
        raise ValueError(f"empty entry in list {text!r}")
    return out
