"""``embedlab index build`` / ``embedlab index search``: build, save and query a vector index."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from embedlab._io import atomic_write_text
from embedlab._validation import check_choice, check_int
from embedlab.cli._common import check_out_dir, check_out_file, console, describe_error, fail

__all__ = ["app", "build_command", "search_command"]

app = typer.Typer(help="Build and query compressed vector indexes.", no_args_is_help=True)

METRICS = ("cos", "ip", "l2")
SPEC_HELP = (
    "index spec: Flat, Int8, Binary, BEBR{bits}, PQ{m}, OPQ{m}, Matryoshka{d}, "
    "then optional stages such as Rerank(Flat,k_factor=10)"
)


def _load_npy(path: Path, what: str) -> np.ndarray:
    if path.is_dir():
        raise ValueError(f"{what} must be a .npy file, got the folder {path}")
    if not path.is_file():
        raise ValueError(f"{what} file {path} does not exist")
    try:
        arr: np.ndarray = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{what} file {path} is not a readable .npy array: {exc}") from None
    return arr


def _check_index_out(out: Path, *, force: bool) -> None:
    """Refuse ``--out`` before training: a file, a folder of other files, or an index
    without ``--force`` (:func:`embedlab.index.save_index` enforces the same rules)."""
    from embedlab.index.io import check_save_target

    check_out_dir("--out", out)
    check_save_target(out, overwrite=force)


@app.command("build")
def build_command(
    vectors: Annotated[Path, typer.Argument(help="vectors (n, dim) as .npy")],
    out: Annotated[Path, typer.Option("-o", "--out", help="index folder to write")],
    spec: Annotated[str, typer.Option(help=SPEC_HELP)] = "Flat",
    metric: Annotated[str, typer.Option(help="cos, ip or l2")] = "cos",
    ids: Annotated[Path | None, typer.Option(help="ids (n,) int64 as .npy; default 0..n-1")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="replace an index already saved in OUT")
    ] = False,
) -> None:
    """Train an index on VECTORS, add them, and save it to a folder.

    OUT must be new, empty, or (with --force) hold an index: other files are never replaced.
    """
    from embedlab.index import index_factory, parse_index_spec

    try:
        check_choice("--metric", metric, METRICS)
        try:
            parse_index_spec(spec)  # a typo fails before the vectors are read
        except ValueError as exc:
            raise ValueError(f"--spec: {exc}") from None
        _check_index_out(out, force=force)
        x = _load_npy(vectors, "vectors")
        id_arr = None if ids is None else _load_npy(ids, "ids")
        if x.ndim != 2:
            raise ValueError(f"vectors must have shape (n, dim), got {x.shape}")
        t0 = time.perf_counter()
        try:
            index = index_factory(int(x.shape[1]), spec, metric=metric)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(f"--spec {spec} on {x.shape[1]}-dim vectors: {exc}") from None
        index.train(x)
        index.add(x, ids=id_arr)
        build_s = time.perf_counter() - t0
        index.save(out, overwrite=force)
    except (ValueError, TypeError, OSError) as exc:
        raise fail(describe_error(exc)) from None
    n = max(1, index.ntotal)
    console.print(
        f"built [bold]{index.spec()}[/] ({index.metric}) on {index.ntotal} x {index.dim} "
        f"in {build_s:.2f} s: {index.memory_bytes() / n:.1f} RAM bytes/vector, "
        f"{index.disk_bytes() / n:.1f} disk bytes/vector -> {out}",
        highlight=False,
    )


def _json_score(v: float) -> float | None:
    return None if not math.isfinite(v) else round(float(v), 6)


@app.command("search")
def search_command(
    index_dir: Annotated[Path, typer.Argument(help="index folder written by 'index build'")],
    queries: Annotated[Path, typer.Argument(help="queries (n_q, dim) as .npy")],
    k: Annotated[int, typer.Option("-k", "--k", help="results per query")] = 10,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help='write {"ids": [[...]], "scores": [[...]]} (-1 / null: none)'),
    ] = None,
    show: Annotated[int, typer.Option(help="queries shown in the table")] = 3,
) -> None:
    """Search INDEX_DIR with the vectors in QUERIES; print the top hits."""
    from embedlab.index import load_index

    try:
        check_int("-k", k, min_value=1)
        check_int("--show", show, min_value=0)
        check_out_file("--json", json_out)
        index = load_index(index_dir)
        q = _load_npy(queries, "queries")
        t0 = time.perf_counter()
        scores, ids = index.search(q, k)
        search_s = time.perf_counter() - t0
        if json_out is not None:
            doc = {
                "ids": ids.tolist(),
                "scores": [[_json_score(v) for v in row] for row in scores.tolist()],
            }
            atomic_write_text(json_out, json.dumps(doc) + "\n")
    except (ValueError, TypeError, OSError) as exc:
        raise fail(describe_error(exc)) from None
    table = Table(title=f"{index.spec()}: top {k} of {index.ntotal}", title_justify="left")
    for col in ("query", "rank", "id", "score"):
        table.add_column(col, justify="right")
    for qi in range(min(show, ids.shape[0])):
        for r in range(ids.shape[1]):
            if ids[qi, r] < 0:
                break
            table.add_row(str(qi), str(r + 1), str(ids[qi, r]), f"{scores[qi, r]:.4f}")
    console.print(table)
    qps = ids.shape[0] / search_s if search_s > 0 else float("inf")
    console.print(f"{ids.shape[0]} queries in {search_s:.3f} s ({qps:.0f} queries/s)")
    if json_out is not None:
        console.print(f"hits written to {json_out}", highlight=False)
