"""The embedded default corpus: first paragraphs of the Python standard library's docstrings.

Read with :mod:`ast` from the source files (nothing is imported).
"""

from __future__ import annotations

import ast
import hashlib
import re
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from embedlab._validation import check_int

__all__ = ["DOCSTRINGS_RECIPE", "stdlib_docstrings"]


_SKIP_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "__pycache__"})
_MIN_CHARS = 30
_MAX_CHARS = 600
DOCSTRINGS_RECIPE = f"stdlib-docstrings-v1:first-paragraph,min{_MIN_CHARS},max{_MAX_CHARS}"


def _stdlib_files(stdlib: Path) -> list[tuple[str, Path]]:
    names = sorted(getattr(sys, "stdlib_module_names", ()))
    out: list[tuple[str, Path]] = []
    for name in names:
        single = stdlib / f"{name}.py"
        package = stdlib / name
        if single.is_file():
            out.append((name, single))
        elif package.is_dir() and name not in _SKIP_DIRS:
            for f in sorted(package.rglob("*.py")):
                rel = f.relative_to(stdlib)
                if _SKIP_DIRS.intersection(rel.parts[:-1]) or f.name.startswith("test_"):
                    continue
                module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
                out.append((module, f))
    return out


def _first_paragraph(doc: str) -> str:
    para = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0]
    return " ".join(para.split())[:_MAX_CHARS]


def _docstrings_of(module: str, tree: ast.Module) -> Iterator[tuple[str, str]]:
    stack: list[tuple[str, ast.AST]] = [(module, tree)]
    while stack:
        qual, node = stack.pop()
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                yield qual, doc
        children = [
            c
            for c in ast.iter_child_nodes(node)
            if isinstance(c, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        for child in reversed(children):  # depth first, source order
            stack.append((f"{qual}.{child.name}", child))  # type: ignore[attr-defined]


def stdlib_docstrings(
    max_texts: int = 5000, *, stdlib: str | Path | None = None
) -> tuple[list[str], list[str]]:
    """Docstrings of the standard library, read with :mod:`ast` (nothing is imported).

    Each text is the first paragraph of a module, class or function docstring, whitespace
    collapsed, cut at 600 characters; texts under 30 characters and repeats are dropped.
    When more than ``max_texts`` remain, those with the smallest sha256 are kept (a
    deterministic spread over all modules). The result is in source order.

    Returns:
        ``(ids, texts)`` with ids like ``"json.decoder:JSONDecoder.decode"``.
    """
    check_int("max_texts", max_texts, min_value=1)
    root = Path(stdlib) if stdlib is not None else Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise FileNotFoundError(f"the Python standard library sources are not at {root}")
    seen: set[str] = set()
    items: list[tuple[str, str]] = []
    for module, path in _stdlib_files(root):
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError, OSError):
            continue  # e.g. lib2to3 fixtures in Python 2 syntax
        for qual, doc in _docstrings_of(module, tree):
            text = _first_paragraph(doc)
            if len(text) < _MIN_CHARS or text in seen:
                continue
            seen.add(text)
            ident = module if qual == module else f"{module}:{qual[len(module) + 1 :]}"
            items.append((ident, text))
    if not items:
        raise ValueError(f"no docstrings found under {root}")
    if len(items) > max_texts:
        ranked = sorted(
            range(len(items)), key=lambda i: hashlib.sha256(items[i][1].encode()).hexdigest()
        )
        keep = sorted(ranked[:max_texts])
        items = [items[i] for i in keep]
    return [i for i, _ in items], [t for _, t in items]
