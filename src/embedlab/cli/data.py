"""``embedlab data prepare``: stream a click log once into Parquet shards + vocabularies."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from embedlab._validation import check_int
from embedlab.cli._common import (
    check_out_dir,
    console,
    describe_error,
    fail,
    parse_floats,
    peak_rss_mb,
    progress_bar,
)
from embedlab.cli._flags import Quiet, Threads, apply_threads

__all__ = ["app", "prepare_command"]

app = typer.Typer(help="Prepare CTR logs larger than memory.", no_args_is_help=True)

SOURCE_HELP = (
    "criteo:FILE, avazu:FILE, libfm:FILE|DIR, frappe:DIR or csv(label=click, dense=a|b, "
    "drop=id):FILE; files may be .gz"
)


@app.command("prepare")
def prepare_command(
    source: Annotated[str, typer.Argument(help=SOURCE_HELP)],
    out: Annotated[Path, typer.Option("-o", "--out", help="shards folder to write")],
    min_count: Annotated[
        int | None,
        typer.Option(
            "--min-count",
            help="rarer values share the out-of-vocabulary id 0 "
            "[default: 10 for criteo and avazu, else 1]",
        ),
    ] = None,
    shard_rows: Annotated[int, typer.Option("--shard-rows", help="rows per shard")] = 1 << 20,
    split: Annotated[
        str, typer.Option("--split", help="train,valid,test fractions of the row-hash split")
    ] = "0.8,0.1,0.1",
    seed: Annotated[int, typer.Option(help="seed of the row-hash split")] = 0,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", help="log rows read at once")] = (
        100_000
    ),
    force: Annotated[
        bool, typer.Option("--force", help="replace shards already written in OUT")
    ] = False,
    quiet: Quiet = False,
    threads: Threads = None,
) -> None:
    """Read SOURCE once, in chunks, into OUT: Parquet shards of ids per split + vocabularies.

    Row r of the log goes to train, valid or test by a hash of (r, --seed) and the
    --split fractions; memory does not grow with the number of rows. OUT must be new,
    empty, or (with --force) a folder written by this command.

    Example: embedlab data prepare criteo:day_0.gz -o criteo-shards/ --min-count 10
    """
    apply_threads(threads)
    from embedlab.data._shardio import check_target
    from embedlab.data.prepare import prepare_ctr

    try:
        if min_count is not None:
            check_int("--min-count", min_count, min_value=1)
        check_int("--shard-rows", shard_rows, min_value=1)
        check_int("--chunk-rows", chunk_rows, min_value=1)
        check_int("--seed", seed, min_value=0)
        fractions = parse_floats("--split", split)
        if len(fractions) != 3:
            raise ValueError(f"--split must be three fractions train,valid,test, got {split!r}")
        check_out_dir("--out", out)
        check_target(out, force=force)
        t0 = time.perf_counter()
        with progress_bar("reading log (rows)", quiet=quiet) as advance:

            def report(stage: str, done: int, total: int | None) -> None:
                advance(done, total, "reading log (rows)" if stage == "read" else "writing shards")

            shards = prepare_ctr(
                source,
                out,
                min_count=min_count,
                shard_rows=shard_rows,
                chunk_rows=chunk_rows,
                seed=seed,
                fractions=fractions,
                force=force,
                progress=report,
            )
        seconds = time.perf_counter() - t0
    except (ValueError, TypeError, OSError) as exc:
        raise fail(describe_error(exc)) from None
    rows = {s: shards.n_rows(s) for s in ("train", "valid", "test")}
    total = sum(rows.values())
    cards = ", ".join(f"{f.name}={f.cardinality}" for f in shards.fields[:6])
    more = f", ... ({len(shards.fields)} fields)" if len(shards.fields) > 6 else ""
    console.print(
        f"prepared {total} rows (train {rows['train']}, valid {rows['valid']}, "
        f"test {rows['test']}) in {seconds:.1f} s ({total / max(seconds, 1e-9):.0f} rows/s), "
        f"peak RSS {peak_rss_mb():.0f} MB -> {out}",
        highlight=False,
    )
    console.print(f"  fields: {cards}{more}", highlight=False)
