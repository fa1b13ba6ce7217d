"""``embedlab bench retrieval``: every index on the same vectors, recall vs bytes per vector."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from embedlab.bench import BenchRecord
from embedlab.cli._common import console, fail, record_saver

__all__ = ["DEFAULT_RETRIEVAL_METHODS", "bench_retrieval", "print_retrieval_summary"]

DEFAULT_RETRIEVAL_METHODS = (
    "flat,int8,binary,binary_rerank,bebr1,bebr2,pq48,opq48,bigranular,matryoshka"
)


def print_retrieval_summary(title: str, records: Sequence[BenchRecord]) -> None:
    """The summary table, then one line per method that failed (why)."""
    from embedlab.bench.retrieval import RETRIEVAL_COLUMNS, retrieval_summary_rows

    table = Table(title=title, title_justify="left")
    width = max((len(r.method) for r in records), default=6)
    for col in RETRIEVAL_COLUMNS:
        if col == "method":
            table.add_column(col, justify="left", no_wrap=True, min_width=min(width, 28))
        else:
            table.add_column(col, justify="left" if col == "status" else "right")
    for row in retrieval_summary_rows(records):
        table.add_row(*row)
    console.print(table)
    for r in records:
        if r.status != "ok":
            console.print(f"  [dim]{r.method}: {r.error}[/]", highlight=False)


def bench_retrieval(
    data: Annotated[
        str,
        typer.Option(
            help="docstrings (stdlib, embedded with MiniLM) | beir:DIR | npy:X.npy[,Q.npy]"
        ),
    ] = "docstrings",
    methods: Annotated[
        str,
        typer.Option(
            help="index specs or aliases, comma-separated (a Rerank(...) entry joins the one "
            "before it) or ';'-separated: flat,int8,binary,binary_rerank,bebr1,bebr2,pq48,"
            "opq48,bigranular,matryoshka, or specs like 'PQ32,Rerank(Flat)'"
        ),
    ] = DEFAULT_RETRIEVAL_METHODS,
    k: Annotated[int, typer.Option(help="recall@k against exact search")] = 10,
    metric: Annotated[str, typer.Option(help="cos | ip | l2")] = "cos",
    n_holdout: Annotated[
        int, typer.Option(help="corpus vectors held out as extra queries (recall vs exact)")
    ] = 1000,
    seed: Annotated[int, typer.Option(help="seed of the hold-out split and index training")] = 0,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="write JSON-lines records here (rewritten after each run)"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
) -> None:
    """Build every index METHOD on DATA; print recall, nDCG, bytes per vector and speed."""
    from embedlab.bench.retrieval import RetrievalBenchConfig, parse_methods, run_retrieval_bench
    from embedlab.data.retrieval import load_retrieval

    try:
        config = RetrievalBenchConfig(
            methods=parse_methods(methods),
            k=k,
            metric=metric,  # type: ignore[arg-type]  # checked by the config
            seed=seed,
            progress=not quiet,
        )
        dataset = load_retrieval(data, seed=seed, n_holdout=n_holdout, progress=not quiet)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise fail(str(exc)) from None
    if not quiet:
        console.print(
            f"[bold]{dataset.name}[/]: {dataset.n_corpus:,} vectors x {dataset.dim} "
            f"({dataset.model}), {dataset.queries.shape[0]:,} queries"
            f"{' with qrels' if dataset.qrels else ''}, "
            f"{0 if dataset.holdout is None else dataset.holdout.shape[0]:,} held-out queries"
        )

    def line(record: BenchRecord) -> str:
        recall = record.metrics.get(f"recall@{k}")
        shown = f"recall@{k} {recall:.4f}" if recall is not None else record.status
        return f"{record.method}: {shown}"

    save = record_saver(json_out, quiet=quiet, line=line)

    try:
        records = run_retrieval_bench(dataset, config, on_record=save)
    except ValueError as exc:
        raise fail(str(exc)) from None
    print_retrieval_summary(f"retrieval · {dataset.name} · {dataset.model} · k {k}", records)
    if json_out is not None:
        console.print(f"records written to {json_out}")
