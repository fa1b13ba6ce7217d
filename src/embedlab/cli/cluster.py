"""``embedlab bench cluster``: every clusterer on the same samples, NMI / ARI / ACC table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from embedlab._registry import parse_spec
from embedlab._validation import check_int
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

__all__ = ["DEFAULT_METHODS", "bench_cluster", "print_cluster_summary"]

DEFAULT_METHODS = "kmeans,depict,mlc"


def print_cluster_summary(title: str, records: Sequence[BenchRecord]) -> None:
    """One row per record: NMI, ARI, ACC, fit time, status."""
    metrics = (("nmi", "NMI"), ("ari", "ARI"), ("acc", "ACC"))
    print_runs_table(title, records, metrics, ("fit_s", "fit s"))


def bench_cluster(
    ctx: typer.Context,
    data: Annotated[
        str, typer.Option(help="blobs (synthetic) | digits (bundled 8x8) | mnist:DIR (IDX files)")
    ] = "blobs",
    methods: Annotated[
        str, typer.Option(help="comma-separated clusterer specs, e.g. 'kmeans,depict(epochs=20)'")
    ] = DEFAULT_METHODS,
    n_clusters: Annotated[
        int | None, typer.Option(help="number of clusters (default: number of classes)")
    ] = None,
    seed: Annotated[str, typer.Option(help="seed, or comma-separated seeds")] = "0",
    json_out: JsonOut = None,
    quiet: Quiet = False,
    threads: Threads = None,
) -> None:
    """Cluster the samples with each METHOD; score the labels against the true classes.

    Example: embedlab bench cluster --data mnist:../shared/data/mnist-t10k
    --methods kmeans,spectral,depict,mlc --seed 0,1,2 --json cluster.jsonl
    """
    apply_threads(threads)
    from embedlab.bench.cluster import load_cluster_data, run_cluster_bench
    from embedlab.cluster import CLUSTERERS

    try:
        seeds = [check_int("--seed", s, min_value=0) for s in parse_ints("--seed", seed)]
        specs = parse_specs(methods)
        for spec in specs:  # a typo fails before the data is loaded
            CLUSTERERS.get(parse_spec(spec)[0])
        if n_clusters is not None:
            check_int("--n-clusters", n_clusters, min_value=2)
        check_json_out(json_out)
        full = load_cluster_data(data)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise fail(describe_error(exc)) from None
    if not quiet:
        console.print(f"[bold]{full.name}[/]: {len(full):,} samples, shape {full.x.shape[1:]}")

    def line(record: BenchRecord) -> str:
        nmi = record.metrics.get("nmi")
        shown = f"NMI {nmi:.4f}" if nmi is not None else record.status
        return f"{record.method} (seed {record.seed}): {shown}"

    # records append after a header line; the cluster suite has no resume yet (always runs)
    with record_saver(json_out, quiet=quiet, line=line, rerun=True, ctx=ctx) as save:
        try:
            records = run_cluster_bench(
                full,
                methods=specs,
                seeds=seeds,
                n_clusters=n_clusters,
                progress=not quiet,
                on_record=save,
            )
        except (ValueError, TypeError) as exc:
            raise fail(describe_error(exc)) from None
        print_cluster_summary(f"cluster · {full.name}", records)
        save.done(records)
