"""``embedlab bench gcd``: generalized category discovery, All / Old / New accuracy table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from embedlab._validation import check_choice, check_int
from embedlab.bench import BenchRecord
from embedlab.cli._common import (
    JsonOut,
    check_json_out,
    console,
    describe_error,
    fail,
    parse_ints,
    parse_specs,
    record_saver,
)
from embedlab.cli._flags import Quiet, Threads, apply_threads
from embedlab.cli._runs_table import print_runs_table

__all__ = ["bench_gcd", "print_gcd_summary"]


def print_gcd_summary(title: str, records: Sequence[BenchRecord]) -> None:
    """One row per record: All / Old / New accuracy, NMI, train time, status."""
    metrics = (("all_acc", "All"), ("old_acc", "Old"), ("new_acc", "New"), ("nmi", "NMI"))
    print_runs_table(title, records, metrics, ("train_s", "train s"))


def bench_gcd(
    ctx: typer.Context,
    data: Annotated[
        str,
        typer.Option(help="synthetic (10 blobs, no files) | digits | mnist:DIR (IDX files)"),
    ] = "synthetic",
    known: Annotated[
        str, typer.Option(help="known classes, e.g. 0-4 or 0,1,5-7 (the rest are new)")
    ] = "0-4",
    methods: Annotated[
        str,
        typer.Option(
            help="comma-separated: raw (k-means on inputs), euclidean (= hypcd(alpha=0)), "
            "hypcd, 'hypcd(alpha=0.5, curvature=0.05)', or any labels loss spec"
        ),
    ] = "euclidean,hypcd",
    seed: Annotated[str, typer.Option(help="seed, or comma-separated seeds")] = "0",
    labelled_fraction: Annotated[
        float, typer.Option(help="share of each known class that is labelled")
    ] = 0.5,
    dim: Annotated[int, typer.Option(help="embedding dimension")] = 32,
    epochs: Annotated[int, typer.Option(help="training epochs")] = 5,
    batch_size: Annotated[int, typer.Option(help="samples per batch (two views each)")] = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    sup_weight: Annotated[float, typer.Option(help="weight of the supervised term")] = 0.5,
    model: Annotated[
        str | None, typer.Option(help="cnn | mlp (default: cnn for images, else mlp)")
    ] = None,
    assign: Annotated[
        str,
        typer.Option(
            help="kmeans (k-means on the unlabelled pool) | ss-kmeans (semi-supervised "
            "k-means on all samples, labelled ones fixed to their class)"
        ),
    ] = "kmeans",
    threads: Threads = None,
    json_out: JsonOut = None,
    quiet: Quiet = False,
) -> None:
    """Train an encoder per METHOD in the GCD setting; cluster and score the unlabelled pool.

        Known classes have --labelled-fraction of their samples labelled; the pool (the rest of
        the known classes and all new classes) is clustered into as many clusters as classes and
        scored with one Hungarian matching on all of it, then split into Old / New. --assign
    ss-kmeans clusters all samples with the labelled ones held in their class's cluster.

        Example: embedlab bench gcd --data mnist:../shared/data/mnist-t10k --known 0-4
        --methods euclidean,hypcd --seed 0,1,2 --json runs.jsonl
    """
    from embedlab.bench.gcd import (
        ASSIGNS,
        gcd_split,
        load_gcd_data,
        parse_known,
        resolve_method,
        run_gcd_bench,
    )

    try:
        apply_threads(threads)
        check_choice("--assign", assign, ASSIGNS)
        seed_list = [check_int("--seed", s, min_value=0) for s in parse_ints("--seed", seed)]
        known_ids = parse_known(known, option="--known")
        method_list = parse_specs(methods)
        for m in method_list:  # a typo fails before the data is loaded
            resolve_method(m)
        check_json_out(json_out)
        full = load_gcd_data(data)
        gcd_split(full, known_ids, labelled_fraction=labelled_fraction)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise fail(describe_error(exc)) from None
    if not quiet:
        console.print(
            f"[bold]{full.name}[/]: {len(full):,} samples, known classes {list(known_ids)}"
        )

    def line(record: BenchRecord) -> str:
        acc = record.metrics.get("all_acc")
        shown = f"All {acc:.4f}" if acc is not None else record.status
        return f"{record.method} (seed {record.seed}): {shown}"

    with record_saver(json_out, quiet=quiet, line=line, rerun=True, ctx=ctx) as save:
        try:
            records = run_gcd_bench(
                full,
                known=known_ids,
                methods=method_list,
                seeds=seed_list,
                labelled_fraction=labelled_fraction,
                dim=dim,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                sup_weight=sup_weight,
                model=model,
                assign=assign,
                threads=threads,
                progress=not quiet,
                on_record=save,
            )
        except (ValueError, TypeError) as exc:
            raise fail(describe_error(exc)) from None
        print_gcd_summary(f"gcd · {full.name} · known {known} · {assign}", records)
        save.done(records)
