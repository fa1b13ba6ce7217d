"""Source layout rules, checked on the real tree under ``src/embedlab`` with ``ast``.

- no source file is longer than :data:`MAX_LINES` lines;
- a module of package ``embedlab.A`` never imports a private module or name of another
  package ``embedlab.B`` (``embedlab.B._x``, ``from embedlab.B import _x``), except the
  explicit :data:`ALLOWED` list; top-level ``embedlab._x`` modules are neutral, any module
  may import them;
- the modules of ``embedlab.index`` import each other without a cycle, neither at module
  level nor counting the imports inside functions and ``if TYPE_CHECKING:`` blocks.

The checkers are plain functions run on the source files, so the last tests also feed them
a small made-up tree that breaks each rule and check that they report it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
MAX_LINES = 400

#: (importing file relative to src/embedlab, private module it imports) -> why it may.
ALLOWED: dict[tuple[str, str], str] = {
    # the CLI is a thin shell over library internals that have no public home yet
    ("cli/_common.py", "embedlab.bench._ray_grid"): "cli: import_ray for --ray",
    ("cli/_explain.py", "embedlab.analysis._explain_io"): "cli: explain folder checks",
    ("cli/data.py", "embedlab.data._shardio"): "cli: output folder check",
    ("cli/report.py", "embedlab.bench._records_io"): "cli: expand_paths, read_records",
    ("cli/retrieval.py", "embedlab.bench._bidr_method"): "cli: BiDR spec parsing",
    ("cli/tables.py", "embedlab.tables._runs"): "cli: table_from_run",
}


# -- checkers --------------------------------------------------------------------------------


def module_name(path: Path, src: Path) -> str:
    """``src/embedlab/index/_base.py`` -> ``embedlab.index._base`` (packages without
    ``__init__``)."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(src: Path) -> list[Path]:
    return sorted((src / "embedlab").rglob("*.py"))


def _is_type_checking(test: ast.expr) -> bool:
    return "TYPE_CHECKING" in ast.unparse(test)


def imports(path: Path, src: Path) -> Iterator[tuple[tuple[str, ...], int, bool]]:
    """``(targets, line, at module level)`` for every imported name of ``path``.

    ``targets`` is what the import may load, most specific first: ``from a.b import c``
    gives ``("a.b.c", "a.b")`` (``c`` is a module or a name of ``a.b``), ``import a.b`` gives
    ``("a.b",)``. Module level excludes function bodies and ``if TYPE_CHECKING:`` blocks.
    """
    mod = module_name(path, src)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    def visit(node: ast.AST, top: bool) -> Iterator[tuple[tuple[str, ...], int, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                for alias in child.names:
                    targets = (base,) if alias.name == "*" else (f"{base}.{alias.name}", base)
                    yield targets, child.lineno, top
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    yield (alias.name,), child.lineno, top
            elif (
                isinstance(child, ast.Call)
                and isinstance(child.func, (ast.Attribute, ast.Name))
                and (getattr(child.func, "attr", None) or getattr(child.func, "id", None))
                == "import_module"
                and child.args
                and isinstance(child.args[0], ast.Constant)
                and isinstance(child.args[0].value, str)
            ):
                yield (child.args[0].value,), child.lineno, False
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), False)
                for stmt in child.orelse:
                    yield from visit(ast.Module(body=[stmt], type_ignores=[]), top)
                continue
            inner = top and not isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            )
            yield from visit(child, inner)

    yield from visit(tree, True)


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def long_files(src: Path, max_lines: int = MAX_LINES) -> dict[str, int]:
    """Files under ``src/embedlab`` longer than ``max_lines`` lines, with their length."""
    out = {}
    for path in python_files(src):
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > max_lines:
            out[path.relative_to(src / "embedlab").as_posix()] = n
    return out


def private_imports(src: Path) -> dict[tuple[str, str], list[int]]:
    """``(file, private module)`` -> lines, for imports of another package's private module
    or name; the module is cut after its first private part (``embedlab.B._x``)."""
    out: dict[tuple[str, str], list[int]] = {}
    for path in python_files(src):
        parts = module_name(path, src).split(".")
        inside = path.name == "__init__.py" or len(parts) > 2
        own = parts[1] if len(parts) > 1 and inside else None  # None: a top-level module
        for targets, line, _ in imports(path, src):
            target = targets[0].split(".")
            if target[0] != "embedlab" or len(target) < 3 or _private(target[1]):
                continue  # not ours, a package itself, or a neutral embedlab._x module
            if target[1] == own:
                continue
            cut = next((i for i, p in enumerate(target[2:], 2) if _private(p)), None)
            if cut is None:
                continue
            key = (path.relative_to(src / "embedlab").as_posix(), ".".join(target[: cut + 1]))
            out.setdefault(key, [])
            if line not in out[key]:
                out[key].append(line)
    return out


def import_graph(src: Path, package: str, *, module_level: bool) -> dict[str, set[str]]:
    """Edges between the modules of ``package`` (``embedlab.index``), the package's
    ``__init__`` included as ``package``; only module-level imports if ``module_level``."""
    folder = src.joinpath(*package.split("."))
    mods = {module_name(p, src): p for p in sorted(folder.rglob("*.py"))}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        for targets, _, top in imports(path, src):
            if module_level and not top:
                continue
            name = next((t for t in targets if t in mods), None)
            if name is not None and name != mod:
                graph[mod].add(name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of the directed graph, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


# -- the real tree ---------------------------------------------------------------------------


def test_source_tree_is_here() -> None:
    assert (SRC / "embedlab" / "__init__.py").is_file()
    assert len(python_files(SRC)) > 100


def test_no_source_file_over_the_line_limit() -> None:
    too_long = long_files(SRC)
    assert not too_long, f"files over {MAX_LINES} lines (split them): {too_long}"


def test_no_private_import_across_packages() -> None:
    found = private_imports(SRC)
    bad = {k: v for k, v in found.items() if k not in ALLOWED}
    assert not bad, (
        "modules importing another package's private module (move the helper to a neutral "
        f"embedlab/_x.py or a public module): {bad}"
    )


def test_private_import_allow_list_is_not_stale() -> None:
    stale = sorted(set(ALLOWED) - set(private_imports(SRC)))
    assert not stale, f"ALLOWED entries that no longer occur (remove them): {stale}"


@pytest.mark.parametrize("module_level", [True, False], ids=["module-level", "all-imports"])
def test_index_package_has_no_import_cycle(module_level: bool) -> None:
    graph = import_graph(SRC, "embedlab.index", module_level=module_level)
    assert len(graph) > 30 and "embedlab.index._base" in graph
    assert "embedlab.index._base" in graph["embedlab.index.io"]  # edges are found
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


# -- the checkers catch what they should -----------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "src" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "src"


def test_checkers_report_a_broken_tree(tmp_path: Path) -> None:
    src = _write(
        tmp_path,
        {
            "embedlab/__init__.py": "",
            "embedlab/_neutral.py": "from embedlab.b._hidden import x\n",
            "embedlab/top.py": "from embedlab.b import _hidden\n",
            "embedlab/a/__init__.py": "",
            "embedlab/a/mod.py": (
                "import embedlab._neutral\n"
                "from embedlab.a._own import y\n"
                "from embedlab.b.public import _helper\n"
                "def f():\n    from embedlab.b._hidden.deep import z\n"
            ),
            "embedlab/a/_own.py": "\n" * 401,
            "embedlab/b/__init__.py": "from embedlab.b import public\n",
            "embedlab/b/public.py": (
                "from embedlab.b import _hidden\n"
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from embedlab.b._typed import T\n"
            ),
            "embedlab/b/_hidden.py": "from embedlab.b.public import thing\n",
            "embedlab/b/_typed.py": "def g():\n    from embedlab.b import public\n",
            "embedlab/b/ok.py": "from embedlab.b._hidden import thing\n",
        },
    )
    assert long_files(src) == {"a/_own.py": 401}
    assert private_imports(src) == {
        ("_neutral.py", "embedlab.b._hidden"): [1],
        ("top.py", "embedlab.b._hidden"): [1],
        ("a/mod.py", "embedlab.b.public._helper"): [3],
        ("a/mod.py", "embedlab.b._hidden"): [5],
    }
    top = import_graph(src, "embedlab.b", module_level=True)
    assert top["embedlab.b.public"] == {"embedlab.b._hidden"}  # not the TYPE_CHECKING one
    assert top["embedlab.b._typed"] == set()  # not the one inside a function
    assert find_cycle(top) == ["embedlab.b.public", "embedlab.b._hidden", "embedlab.b.public"]
    del top["embedlab.b._hidden"]
    assert find_cycle(top) is None
    every = import_graph(src, "embedlab.b", module_level=False)
    every["embedlab.b._hidden"] = set()
    assert every["embedlab.b._typed"] == {"embedlab.b.public"}  # the submodule, not the package
    assert find_cycle(every) == ["embedlab.b.public", "embedlab.b._typed", "embedlab.b.public"]
