"""``embedlab bench ...``: run a suite and print / save its records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from embedlab._validation import check_int, check_positive_float
from embedlab.bench import BenchRecord
from embedlab.cli._common import (
    CpusPerRun,
    JsonOut,
    RayAddress,
    Rerun,
    UseRay,
    check_json_out,
    console,
    describe_error,
    fail,
    grid_engine,
    parse_floats,
    parse_ints,
    parse_specs,
    print_summary,
    record_saver,
)
from embedlab.cli._flags import Device, Quiet, Threads, apply_threads, check_device
from embedlab.cli.bundle import bench_bundle
from embedlab.cli.cluster import bench_cluster
from embedlab.cli.disentangle import bench_disentangle
from embedlab.cli.gcd import bench_gcd
from embedlab.cli.graph import bench_graph
from embedlab.cli.metric import bench_metric
from embedlab.cli.retrieval import bench_retrieval

if TYPE_CHECKING:
    from embedlab.data import CTRSplits

app = typer.Typer(help="Run a benchmark suite: every method side by side on the same data.")

ALL_CTR_METHODS = "full,hash,qr,ue,mde,tt,dhe,robe,int8,int16"


@app.command("ctr")
def bench_ctr(
    ctx: typer.Context,
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
    methods: Annotated[
        str, typer.Option(help="comma-separated table methods, or all (every registered table)")
    ] = ALL_CTR_METHODS,
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
    seed: Annotated[
        str, typer.Option(help="seed, or comma-separated seeds (each seed splits the data anew)")
    ] = "0",
    embedding_l2: Annotated[
        float, typer.Option(help="L2 weight on the looked-up embeddings (FuxiCTR's)")
    ] = 0.0,
    weight_decay: Annotated[float, typer.Option(help="Adam weight decay of the dense net")] = 0.0,
    tune: Annotated[
        int,
        typer.Option(
            help="train N candidate settings per run (the flags' first, then the same seeded "
            "draws for every method) and keep the best on valid AUC; 1 = no tuning"
        ),
    ] = 1,
    json_out: JsonOut = None,
    rerun: Rerun = False,
    ray: UseRay = False,
    address: RayAddress = None,
    cpus_per_run: CpusPerRun = None,
    quiet: Quiet = False,
    threads: Threads = None,
    device: Device = "cpu",
) -> None:
    """Train MODEL with every METHOD at every COMPRESSION; print AUC vs memory.

    --json FILE appends the records (resume: runs already in FILE are skipped). --ray runs
    each (method, compression, seed) as a Ray task; its records equal a sequential run's
    with the same --cpus-per-run. --tune N compares methods at equal tuning budget: every
    run trains the same N settings (lr, batch, schedule, regularisation, dropout) and keeps
    the one with the best validation AUC; the test AUC is that one's.

    Example: embedlab bench ctr --data frappe:DIR --methods all --compression 10,100,1000
    --json frappe.jsonl --ray --cpus-per-run 1
    """
    apply_threads(threads)
    from embedlab.bench import CTRBenchConfig, run_ctr_bench
    from embedlab.data import load_ctr
    from embedlab.tables import TABLES

    try:
        check_int("--dim", dim, min_value=1)
        check_int("--epochs", epochs, min_value=1)
        check_int("--batch-size", batch_size, min_value=1)
        check_positive_float("--lr", lr)
        check_int("--patience", patience, min_value=1)
        check_positive_float("--embedding-l2", embedding_l2, strict=False)
        check_positive_float("--weight-decay", weight_decay, strict=False)
        check_int("--tune", tune, min_value=1)
        seeds = [check_int("--seed", s, min_value=0) for s in parse_ints("--seed", seed)]
        compressions = [
            check_positive_float("--compression", c, min_value=1.0, strict=False)
            for c in parse_floats("--compression", compression)
        ]
        check_json_out(json_out)
        engine = grid_engine(ray, address, cpus_per_run)
        config = CTRBenchConfig(
            model=model,
            methods=list(TABLES) if methods.strip().lower() == "all" else parse_specs(methods),
            compressions=compressions,
            dim=dim,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            patience=patience,
            seeds=seeds,
            progress=not quiet and engine is None,
            embedding_l2=embedding_l2,
            weight_decay=weight_decay,
            tune=tune,
            device=check_device(device),
        )
        splits = load_ctr(data, seed=seeds[0])  # bad data fails here, before any training
        config.check_data(splits)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
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

    def load(seed: int) -> CTRSplits:  # each seed its own split
        return splits if seed == seeds[0] else load_ctr(data, seed=seed)

    with record_saver(json_out, quiet=quiet, line=line, rerun=rerun, ctx=ctx) as save:
        records = run_ctr_bench(load, config, on_record=save, recorded=save.recorded, engine=engine)
        print_summary(f"ctr · {splits.name} · {model} · dim {dim}", records)
        save.done(records)


app.command("bundle")(bench_bundle)
app.command("cluster")(bench_cluster)
app.command("gcd")(bench_gcd)
app.command("disentangle")(bench_disentangle)
app.command("graph")(bench_graph)
app.command("metric")(bench_metric)
app.command("retrieval")(bench_retrieval)
