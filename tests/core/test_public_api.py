from __future__ import annotations

import pytest

import embedlab


def test_all_is_sorted_and_importable() -> None:
    names = list(embedlab.__all__)

    def isort_key(name: str) -> tuple[int, str]:
        # constants, then classes, then functions (ruff RUF022 / isort order)
        kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
        return kind, name

    assert names == sorted(names, key=isort_key)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(embedlab, name), name


def test_py_typed_marker_shipped() -> None:
    from pathlib import Path

    assert (Path(embedlab.__file__).parent / "py.typed").exists()


def test_every_lazy_name_is_public_and_resolves() -> None:
    assert set(embedlab._LAZY) == set(embedlab.__all__) - {"__version__"}
    for name in embedlab._LAZY:
        assert getattr(embedlab, name) is not None
    assert "make_table" in dir(embedlab)


@pytest.mark.parametrize("module", ["embedlab.index", "embedlab.cli", "embedlab.bench"])
def test_fast_imports_do_not_load_torch_or_pandas(module: str) -> None:
    # `embedlab --help` 5.45 s -> 0.47 s and `import embedlab.index` 4.99 s -> 0.54 s
    # once these stay out (issue 14, fast start)
    import subprocess
    import sys

    code = f"import sys, {module}; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"], out.stdout
