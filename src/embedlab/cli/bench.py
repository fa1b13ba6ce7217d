"""``embedlab bench ...``: run a suite and print / save its records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from embedlab._validation import check_int, check_positive_float
from embedlab.bench import BenchRecord, CTRBenchConfig, run_ctr_bench
from embedlab.cli._common import (
    check_out_file,
    console,
    describe_error,
    fail,
    parse_floats,
    parse_ints,
    parse_specs,
    print_summary,
    record_saver,
)
from embedlab.cli.cluster import bench_cluster
from embedlab.cli.graph import bench_graph
from embedlab.cli.metric import bench_metric
from embedlab.cli.retrieval import bench_retrieval

app = typer.Typer(help="Run a benchmark suite: every method side by side on the same data.")

ALL_CTR_METHODS = "full,hash,qr,ue,mde,tt,dhe,robe,int8,int16"


@app.command("ctr")
def bench_ctr(
    data: Annotated[
        str,
        typer.Option(
            help="synthetic | frappe:DIR | libfm:PATH | criteo:PATH | avazu:PATH | movielens:PATH"
            " | synthetic-seq | movielens-seq:DIR (behaviour sequences, records gAUC)"
        ),
    ] = "synthetic",
    model: Annotated[
        str, typer.Option(help="CTR model, e.g. deepfm, dcnv2, 'autoint(n_layers=2)'")
    ] = "deepfm",
    methods: Annotated[str, typer.Option(help="comma-separated table methods")] = ALL_CTR_METHODS,
    compression: Annotated[
        str, typer.Option(help="comma-separated compression factors (>= 1)")
    ] = "10,100",
    dim: Annotated[int, typer.Option(help="embedding dimension")] = 16,
    epochs: Annotated[int, typer.Option(help="maximum epochs (early stopping on valid AUC)")] = 10,
    batch_size: Annotated[int, typer.Option(help="training batch size")] = 2048,
    lr: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    patience: Annotated[
        int, typer.Option(help="epochs without valid-AUC gain before stopping")
    ] = 2,
    seed: Annotated[str, typer.Option(help="seed, or comma-separated seeds")] = "0",
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="write JSON-lines records here (rewritten after each run)"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
) -> None:
    """Train MODEL with every METHOD at every COMPRESSION; print AUC vs memory."""
    from embedlab.data import load_ctr

    try:
        check_int("--dim", dim, min_value=1)
        check_int("--epochs", epochs, min_value=1)
        check_int("--batch-size", batch_size, min_value=1)
        check_positive_float("--lr", lr)
        check_int("--patience", patience, min_value=1)
        seeds = [check_int("--seed", s, min_value=0) for s in parse_ints("--seed", seed)]
        compressions = [
            check_positive_float("--compression", c, min_value=1.0, strict=False)
            for c in parse_floats("--compression", compression)
        ]
        check_out_file("--json", json_out)
        config = CTRBenchConfig(
            model=model,
            methods=parse_specs(methods),
            compressions=compressions,
            dim=dim,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            patience=patience,
            seeds=seeds,
            progress=not quiet,
        )
        splits = load_ctr(data, seed=seeds[0])
        config.check_data(splits)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise fail(describe_error(exc)) from None
    if not quiet:
        console.print(
            f"[bold]{splits.name}[/]: {len(splits.train):,} train / {len(splits.valid):,} valid / "
            f"{len(splits.test):,} test rows, {len(splits.fields)} fields, "
            f"{sum(f.cardinality for f in splits.fields):,} ids; model {model}, dim {dim}"
        )

    def line(record: BenchRecord) -> str:
        auc = record.metrics.get("auc")
        shown = f"auc {auc:.4f}" if auc is not None else record.status
        return f"{record.method} @ {record.compression:g}x: {shown}"

    save = record_saver(json_out, quiet=quiet, line=line)

    records = run_ctr_bench(splits, config, on_record=save)
    print_summary(f"ctr · {splits.name} · {model} · dim {dim}", records)
    if json_out is not None:
        console.print(f"records written to {json_out}")


app.command("cluster")(bench_cluster)
app.command("graph")(bench_graph)
app.command("metric")(bench_metric)
app.command("retrieval")(bench_retrieval)
