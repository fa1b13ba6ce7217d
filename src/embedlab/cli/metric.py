"""``embedlab bench metric``: train one encoder per loss, unseen-class retrieval table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.table import Table

from embedlab._registry import parse_spec
from embedlab._validation import check_choice, check_int, check_positive_float
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
    parse_ints,
    parse_specs,
    record_saver,
)
from embedlab.cli._flags import Device, Quiet, Threads, apply_threads, check_device

__all__ = ["DEFAULT_LOSSES", "bench_metric", "print_metric_summary"]

DEFAULT_LOSSES = "triplet,contrastive,supcon"
_COLUMNS = (
    ("precision_at_1", "P@1"),
    ("map_at_r", "MAP@R"),
    ("r_precision", "R-prec"),
    ("recall_at_10", "R@10"),
    ("nmi", "NMI"),
    ("ami", "AMI"),
)
_OPTIONAL_COLUMNS = (("angle_r2", "angle R2"), ("angle_r2_inv", "angle R2 inv"))


def print_metric_summary(title: str, records: Sequence[BenchRecord]) -> None:
    """One row per record: retrieval and clustering metrics, training time, status."""
    table = Table(title=title, title_justify="left")
    table.add_column("method", justify="left")
    table.add_column("seed", justify="right")
    shown = [
        *_COLUMNS,
        *(c for c in _OPTIONAL_COLUMNS if any(c[0] in r.metrics for r in records)),
    ]
    for _, label in shown:
        table.add_column(label, justify="right")
    table.add_column("train s", justify="right")
    table.add_column("samples/s", justify="right")
    table.add_column("status", justify="left")
    for r in records:
        cells = [r.method, str(r.seed)]
        cells += [f"{r.metrics[key]:.4f}" if key in r.metrics else "-" for key, _ in shown]
        train_s = r.timing.get("train_s")
        sps = r.timing.get("samples_per_s")
        cells.append("-" if not train_s else f"{train_s:.1f}")
        cells.append("-" if not sps else f"{sps:,.0f}")
        cells.append(r.status)
        table.add_row(*cells)
    console.print(table)
    for r in records:
        if r.status != "ok":
            console.print(f"  [dim]{r.method}: {r.error}[/]", highlight=False)


def bench_metric(
    ctx: typer.Context,
    data: Annotated[
        str,
        typer.Option(
            help="digits (bundled 8x8) | mnist:DIR (IDX files) | mnist-rot:DIR (two rotated "
            "views per image: view-pair methods sie, simclr, vicreg)"
        ),
    ] = "digits",
    losses: Annotated[
        str, typer.Option(help="comma-separated loss specs, e.g. 'triplet(margin=0.1),supcon'")
    ] = DEFAULT_LOSSES,
    dim: Annotated[int, typer.Option(help="embedding dimension")] = 64,
    epochs: Annotated[int, typer.Option(help="training epochs (best on held-out valid)")] = 5,
    batch_size: Annotated[int, typer.Option(help="training batch size")] = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    model: Annotated[
        str | None, typer.Option(help="cnn | cnn_attn | mlp (default: cnn for 28x28, else mlp)")
    ] = None,
    seed: Annotated[str, typer.Option(help="seed, or comma-separated seeds")] = "0",
    json_out: JsonOut = None,
    rerun: Rerun = False,
    ray: UseRay = False,
    address: RayAddress = None,
    cpus_per_run: CpusPerRun = None,
    quiet: Quiet = False,
    threads: Threads = None,
    device: Device = "cpu",
) -> None:
    """Train the same encoder with each LOSS on classes 0-4; retrieval on unseen 5-9.

    Example: embedlab bench metric --losses triplet,supcon --seed 0,1 --json metric.jsonl --ray

    On a view-pair source (mnist-rot:DIR) the methods are sie(dim_eq=8), simclr, vicreg,
    trained on rotated pairs of classes 0-4; records add the rotation-angle R2 (angle_r2).
    """
    apply_threads(threads)
    from embedlab.bench.metric import load_labeled, metric_splits, run_metric_bench
    from embedlab.bench.metric_views import (
        check_methods_for_source,
        is_view_source,
        load_view_source,
        run_view_bench,
    )
    from embedlab.losses import LOSSES
    from embedlab.training.encoders import ENCODERS

    try:
        check_int("--dim", dim, min_value=1)
        check_int("--epochs", epochs, min_value=1)
        check_int("--batch-size", batch_size, min_value=2)  # a batch needs pairs
        check_positive_float("--lr", lr)
        if model is not None:
            check_choice("--model", model, ENCODERS)
        seeds = [check_int("--seed", s, min_value=0) for s in parse_ints("--seed", seed)]
        specs = parse_specs(losses)
        views = is_view_source(data)
        check_methods_for_source(specs, view_pairs=views)
        for spec in specs if not views else ():  # a typo fails before the data is loaded
            LOSSES.get(parse_spec(spec)[0])
        check_json_out(json_out)
        if views and (ray or device != "cpu"):
            raise ValueError(
                "--ray and --device are not supported for a view-pair source (mnist-rot): "
                f"it trains in this process on the cpu, got ray={ray}, device={device!r}"
            )
        engine = grid_engine(ray, address, cpus_per_run)
        full = load_view_source(data) if views else load_labeled(data)
        train, test = metric_splits(full)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise fail(describe_error(exc)) from None
    if not quiet:
        console.print(
            f"[bold]{full.name}[/]: {len(train):,} train samples (classes 0-4), "
            f"{len(test):,} test samples (unseen classes 5-9); dim {dim}, {epochs} epochs"
        )

    def line(record: BenchRecord) -> str:
        p1 = record.metrics.get("precision_at_1")
        shown = f"P@1 {p1:.4f}" if p1 is not None else record.status
        return f"{record.method} (seed {record.seed}): {shown}"

    with record_saver(json_out, quiet=quiet, line=line, rerun=rerun, ctx=ctx) as save:
        try:
            if views:
                records = run_view_bench(
                    train, test, methods=specs, dim=dim, epochs=epochs, batch_size=batch_size,
                    lr=lr, seeds=seeds, model=model, progress=not quiet, on_record=save,
                    recorded=save.recorded,
                )  # fmt: skip
                print_metric_summary(
                    f"metric · {full.name} · view pairs, unseen classes 5-9 · dim {dim}", records
                )
                save.done(records)
                return
            records = run_metric_bench(
                train,
                test,
                losses=specs,
                dim=dim,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                seeds=seeds,
                model=model,
                progress=not quiet,
                on_record=save,
                recorded=save.recorded,
                engine=engine,
                device=check_device(device),
            )
        except (ValueError, TypeError) as exc:
            raise fail(describe_error(exc)) from None
        print_metric_summary(f"metric · {full.name} · unseen classes 5-9 · dim {dim}", records)
        save.done(records)
