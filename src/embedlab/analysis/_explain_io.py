"""Writing an explanation folder atomically, never touching a folder embedlab did not write.

Layout::

    OUT/
      .embedlab-explain   owner marker
      summary.json        ExplainResult.to_dict()
      rules.txt           ExplainResult.rules_text()

Everything is written into a temporary sibling folder ``.OUT.explain-<8 hex>`` first, then
renamed into place. ``OUT`` may be absent or an empty folder; a folder holding an earlier
explanation is replaced only with ``force`` and only if it holds nothing but our files; any
other folder is refused and left as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from embedlab._io import fsync_dir

if TYPE_CHECKING:
    from embedlab.analysis.explain import ExplainResult

__all__ = ["FILES", "MARKER", "check_explain_target", "write_explain_folder"]

MARKER = ".embedlab-explain"
FILES = ("summary.json", "rules.txt")


def _is_ours(entry: Path) -> bool:
    return entry.name in (MARKER, *FILES) and entry.is_file() and not entry.is_symlink()


def check_explain_target(out: Path, *, force: bool) -> None:
    """Raise unless ``out`` is absent, an empty folder, or (with ``force``) our folder."""
    if out.is_symlink():
        raise ValueError(f"output folder {out} is a symbolic link; choose a plain folder")
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"output folder {out} must be a folder, got a file")
    entries = sorted(out.iterdir())
    if not entries:
        return
    if not (out / MARKER).is_file():
        shown = ", ".join(p.name for p in entries[:5]) + (" ..." if len(entries) > 5 else "")
        raise ValueError(
            f"refusing to write into {out}: it is a non-empty folder embedlab did not write "
            f"(it holds {shown}); choose a new or empty folder"
        )
    foreign = [p.name for p in entries if not _is_ours(p)]
    if foreign:
        raise ValueError(
            f"refusing to replace {out}: it holds files embedlab did not write "
            f"({', '.join(foreign[:5])}); move them away first"
        )
    if not force:
        raise ValueError(
            f"output folder {out} already holds an explanation; pass force=True "
            "(--force on the command line) to replace it"
        )


def _remove_ours(folder: Path) -> None:
    """Delete our files in ``folder`` and the folder if that empties it (a file someone
    added meanwhile stays, with its folder)."""
    for entry in folder.iterdir():
        if _is_ours(entry):
            entry.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def _write_file(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def write_explain_folder(
    result: ExplainResult, out: str | os.PathLike[str], *, force: bool = False
) -> Path:
    """Write ``summary.json`` and ``rules.txt`` of ``result`` into the folder ``out``.

    Raises:
        ValueError: ``out`` is a file, a link, a folder embedlab did not write, or an
            earlier explanation while ``force`` is false. Nothing is written or removed then.
    """
    target = Path(out)
    check_explain_target(target, force=force)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.explain-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        (tmp / MARKER).write_bytes(b"")
        _write_file(tmp / "summary.json", json.dumps(result.to_dict(), indent=2) + "\n")
        _write_file(tmp / "rules.txt", result.rules_text())
        fsync_dir(tmp)
        check_explain_target(target, force=force)  # again: it may have changed meanwhile
        if target.exists() and any(target.iterdir()):
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            os.rename(tmp, target)
            _remove_ours(old)
        else:
            with contextlib.suppress(FileNotFoundError):
                target.rmdir()
            os.rename(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
