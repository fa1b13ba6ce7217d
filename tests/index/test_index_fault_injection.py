"""A save killed at every step of the swap: PATH always loads the old or the new index.

Each case forks; the child saves with ``os.fsync`` / ``os.replace`` / ``os.rename`` /
``shutil.rmtree`` patched to kill the process (``os._exit``, no cleanup runs, like SIGKILL)
at their N-th call. The parent then loads PATH and saves again, which must remove what the
killed save left.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from embedlab.index import index_factory, load_index

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

_PATCHED = ("fsync", "replace", "rename")


def _save_killed_at(step: int, path: Path, n: int, overwrite: bool) -> int:
    """Fork a child that saves a Flat index of ``n`` rows, killed before call ``step``."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            calls = [0]

            def killer(real):  # type: ignore[no-untyped-def]
                def wrapped(*args, **kwargs):  # type: ignore[no-untyped-def]
                    calls[0] += 1
                    if calls[0] == step:
                        os._exit(9)
                    return real(*args, **kwargs)

                return wrapped

            for name in _PATCHED:
                setattr(os, name, killer(getattr(os, name)))
            shutil.rmtree = killer(shutil.rmtree)
            index = index_factory(8, "Flat")
            index.add(np.random.default_rng(n).standard_normal((n, 8)).astype(np.float32))
            index.save(path, overwrite=overwrite)
            os._exit(0)
        except BaseException:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _states(tmp_path: Path, overwrite: bool) -> list[int | None]:
    """The ``ntotal`` PATH loads after a save killed at each step (None: nothing loads)."""
    seen: list[int | None] = []
    for step in range(1, 200):
        path = tmp_path / f"ix{step}"
        if overwrite:
            old = index_factory(8, "Flat")
            old.add(np.zeros((5, 8), np.float32))
            old.save(path)
        code = _save_killed_at(step, path, 7, overwrite)
        assert code in (0, 9), f"the child failed at step {step} (exit {code})"
        try:
            seen.append(load_index(path).ntotal)
        except ValueError:
            seen.append(None)
        # the next save recovers: it works and leaves exactly one data folder
        fresh = index_factory(8, "Flat")
        fresh.add(np.ones((3, 8), np.float32))
        fresh.save(path, overwrite=True)
        assert load_index(path).ntotal == 3
        assert len(list(path.glob("data-*"))) == 1
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
        if code == 0:
            return seen
    raise AssertionError("the save never finished")


def test_killed_overwrite_loads_old_or_new(tmp_path: Path) -> None:
    seen = _states(tmp_path, overwrite=True)
    assert len(seen) >= 5  # fsyncs of the arrays, the json, the folders, the replace
    assert set(seen) <= {5, 7}, seen  # never nothing, never a mix
    assert seen[0] == 5 and seen[-1] == 7


def test_killed_first_save_loads_nothing_or_new(tmp_path: Path) -> None:
    seen = _states(tmp_path, overwrite=False)
    assert set(seen) <= {None, 7}, seen
    assert seen[-1] == 7
