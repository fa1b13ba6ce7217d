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
from embedlab.cli._common import (
    check_out_dir,
    check_out_file,
    console,
    describe_error,
    fail,
    peak_rss_mb,
    progress_bar,
)
from embedlab.cli._flags import Quiet, Threads, apply_threads

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
    vectors: Annotated[
        Path, typer.Argument(help="vectors (n, dim) as .npy, or a folder of .npy shards")
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="index folder to write")],
    spec: Annotated[str, typer.Option(help=SPEC_HELP)] = "Flat",
    metric: Annotated[str, typer.Option(help="cos, ip or l2")] = "cos",
    ids: Annotated[Path | None, typer.Option(help="ids (n,) int64 as .npy; default 0..n-1")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="replace an index already saved in OUT")
    ] = False,
    train_size: Annotated[
        int, typer.Option(help="vectors sampled across the shards for training")
    ] = 200_000,
    chunk_rows: Annotated[int, typer.Option(help="rows read and added at a time")] = 65_536,
    quiet: Quiet = False,
    threads: Threads = None,
) -> None:
    """Train an index on a sample of VECTORS, add them chunk by chunk, save it to a folder.

    VECTORS is one .npy file or a folder of .npy shards (same dim and dtype, read in name
    order, one chunk in memory at a time). OUT must be new, empty, or (with --force) hold
    an index: other files are never replaced.

    Example: embedlab index build vectors/ --spec "IVF4096,Binary,Rerank(Flat)" -o big-index/
    """
    apply_threads(threads)
    from embedlab.index import parse_index_spec
    from embedlab.index.build import build_index

    try:
        check_choice("--metric", metric, METRICS)
        try:
            parse_index_spec(spec)  # a typo fails before the vectors are read
        except ValueError as exc:
            raise ValueError(f"--spec: {exc}") from None
        check_int("--train-size", train_size, min_value=1)
        check_int("--chunk-rows", chunk_rows, min_value=1)
        _check_index_out(out, force=force)
        id_arr = None if ids is None else _load_npy(ids, "ids")
        t0 = time.perf_counter()
        with progress_bar("adding vectors", quiet=quiet) as advance:
            index = build_index(
                vectors,
                spec,
                metric=metric,  # type: ignore[arg-type]
                ids=id_arr,
                train_size=train_size,
                chunk_rows=chunk_rows,
                on_progress=advance,
            )
        build_s = time.perf_counter() - t0
        index.save(out, overwrite=force)
    except (ValueError, TypeError, OSError) as exc:
        raise fail(describe_error(exc)) from None
    n = max(1, index.ntotal)
    console.print(
        f"built [bold]{index.spec()}[/] ({index.metric}) on {index.ntotal} x {index.dim} "
        f"in {build_s:.2f} s: {index.memory_bytes() / n:.1f} RAM bytes/vector, "
        f"{index.disk_bytes() / n:.1f} disk bytes/vector, peak RSS {peak_rss_mb():.0f} MB "
        f"-> {out}",
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
    nprobe: Annotated[
        int | None, typer.Option(help="IVF lists scanned per query (IVF indexes)")
    ] = None,
    ef_search: Annotated[
        int | None, typer.Option("--ef-search", help="HNSW search width (HNSW indexes)")
    ] = None,
    threads: Threads = None,
    quiet: Quiet = False,
) -> None:
    """Search INDEX_DIR with the vectors in QUERIES; print the top hits.

    Example: embedlab index search big-index/ queries.npy -k 10 --nprobe 32
    """
    apply_threads(threads)
    from embedlab.index import load_index

    try:
        check_int("-k", k, min_value=1)
        check_int("--show", show, min_value=0)
        check_out_file("--json", json_out)
        params = {}
        if nprobe is not None:
            params["nprobe"] = check_int("--nprobe", nprobe, min_value=1)
        if ef_search is not None:
            params["efSearch"] = check_int("--ef-search", ef_search, min_value=1)
        index = load_index(index_dir)
        q = _load_npy(queries, "queries")
        t0 = time.perf_counter()
        scores, ids = index.search(q, k, **params)
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
    if quiet:
        return
    qps = ids.shape[0] / search_s if search_s > 0 else float("inf")
    console.print(f"{ids.shape[0]} queries in {search_s:.3f} s ({qps:.0f} queries/s)")
    if json_out is not None:
        console.print(f"hits written to {json_out}", highlight=False)
