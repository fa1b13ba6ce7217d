"""``embedlab bench bundle``: bundle completion (CLHE and ablations), Recall@k / NDCG@k."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from embedlab._validation import check_int, check_positive_float
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

__all__ = ["DEFAULT_METHODS", "bench_bundle", "print_bundle_summary"]

DEFAULT_METHODS = "mean,clhe,clhe_nocl"


def print_bundle_summary(title: str, records: Sequence[BenchRecord], k: int) -> None:
    """One row per record: Recall@k, NDCG@k, train time, status."""
    cols = ((f"recall@{k}", f"Recall@{k}"), (f"ndcg@{k}", f"NDCG@{k}"))
    print_runs_table(title, records, cols, ("train_s", "train s"))


def bench_bundle(
    ctx: typer.Context,
    data: Annotated[
        str,
        typer.Option(
            help="movielens-bundles:DIR (co-rated sessions, MiniLM item text) | "
            "synthetic-bundles | 'synthetic-bundles(n_items=60,n_groups=6)'"
        ),
    ] = "synthetic-bundles",
    methods: Annotated[
        str, typer.Option(help="comma-separated methods: mean, clhe, clhe_nocl, 'clhe(dim=32)'")
    ] = DEFAULT_METHODS,
    seed: Annotated[
        str, typer.Option(help="seed, or comma-separated seeds (each seed splits the data anew)")
    ] = "0",
    epochs: Annotated[int, typer.Option(help="training epochs")] = 20,
    batch_size: Annotated[int, typer.Option(help="bundles per step")] = 256,
    lr: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    k: Annotated[int, typer.Option("--k", "-k", help="cut-off of Recall@k and NDCG@k")] = 20,
    json_out: JsonOut = None,
    quiet: Quiet = False,
    threads: Threads = None,
) -> None:
    """Train each METHOD to complete bundles from their given half; print Recall@k, NDCG@k.

    Example: embedlab bench bundle --data movielens-bundles:../shared/data/ml-latest-small
    --methods mean,clhe,clhe_nocl --seed 0,1,2 --json runs.jsonl
    """
    from embedlab.bench.bundle import run_bundle_bench
    from embedlab.bundle import BUNDLE_METHODS
    from embedlab.data.bundles import BundleData, load_bundles

    try:
        apply_threads(threads)
        seed_list = [check_int("--seed", s, min_value=0) for s in parse_ints("--seed", seed)]
        specs = parse_specs(methods)
        for spec in specs:  # a typo fails before the data is loaded
            name = spec.split("(")[0].strip()
            if name not in BUNDLE_METHODS:
                raise ValueError(
                    f"--methods must be among {', '.join(sorted(BUNDLE_METHODS))}; got {name!r}"
                )
        check_int("--epochs", epochs, min_value=1)
        check_int("--batch-size", batch_size, min_value=1)
        check_positive_float("--lr", lr)
        check_int("--k", k, min_value=1)
        check_json_out(json_out)
        first = load_bundles(data, seed=seed_list[0], progress=not quiet)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise fail(describe_error(exc)) from None
    if not quiet:
        console.print(
            f"[bold]{first.name}[/]: {first.n_items:,} items ({first.item_features.shape[1]}-d "
            f"features), {len(first.train):,} train / {len(first.valid):,} valid / "
            f"{len(first.test):,} test bundles"
        )

    def load(s: int) -> BundleData:  # each seed its own split
        return first if s == seed_list[0] else load_bundles(data, seed=s)

    def line(record: BenchRecord) -> str:
        m = record.metrics
        if f"recall@{k}" not in m:
            return f"{record.method} (seed {record.seed}): {record.status}"
        return (
            f"{record.method} (seed {record.seed}): Recall@{k} {m[f'recall@{k}']:.4f} "
            f"NDCG@{k} {m[f'ndcg@{k}']:.4f}"
        )

    # records append after a header line; this suite has no resume (always runs)
    with record_saver(json_out, quiet=quiet, line=line, rerun=True, ctx=ctx) as save:
        try:
            records = run_bundle_bench(
                load,
                methods=specs,
                seeds=seed_list,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                k=k,
                on_record=save,
            )
        except (ValueError, TypeError) as exc:
            raise fail(describe_error(exc)) from None
        print_bundle_summary(f"bundle · {first.name}", records, k)
        save.done(records)
