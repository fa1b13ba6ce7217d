"""``embedlab bench disentangle``: autoencoders on images with known factors, InfoMEC + MSE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from embedlab._registry import parse_spec
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

__all__ = ["DEFAULT_METHODS", "bench_disentangle", "print_disentangle_summary"]

DEFAULT_METHODS = "ae,lq_ae,beta_vae"
_COLUMNS = (("infom", "InfoM"), ("infoe", "InfoE"), ("infoc", "InfoC"), ("mse", "MSE"))


def print_disentangle_summary(title: str, records: Sequence[BenchRecord]) -> None:
    """One row per record: InfoM, InfoE, InfoC, MSE, train time, status."""
    print_runs_table(title, records, _COLUMNS, ("train_s", "train s"))


def bench_disentangle(
    ctx: typer.Context,
    data: Annotated[
        str, typer.Option(help="shapes | 'shapes(n=5000,size=32,seed=0)' (generated, 5 factors)")
    ] = "shapes",
    methods: Annotated[
        str,
        typer.Option(help="comma-separated autoencoder specs, e.g. 'ae,lq_ae(n_values=10)'"),
    ] = DEFAULT_METHODS,
    seed: Annotated[str, typer.Option(help="seed, or comma-separated seeds")] = "0",
    epochs: Annotated[int, typer.Option(help="training epochs")] = 20,
    batch_size: Annotated[int, typer.Option(help="samples per step")] = 64,
    lr: Annotated[float, typer.Option(help="AdamW learning rate")] = 1e-3,
    n_latents: Annotated[
        int | None, typer.Option(help="latent dimensions (default: twice the factors)")
    ] = None,
    eval_n: Annotated[int, typer.Option(help="samples scored by InfoMEC")] = 2000,
    json_out: JsonOut = None,
    quiet: Quiet = False,
    threads: Threads = None,
) -> None:
    """Train each METHOD on images with known factors; print InfoM / InfoE / InfoC and MSE.

    Example: embedlab bench disentangle --data shapes --methods ae,lq_ae,beta_vae
    --seed 0,1,2 --json runs.jsonl
    """
    from embedlab.bench.disentangle import run_disentangle_bench
    from embedlab.data.shapes import load_factor_data
    from embedlab.disentangle import AUTOENCODERS

    try:
        apply_threads(threads)
        seed_list = [check_int("--seed", s, min_value=0) for s in parse_ints("--seed", seed)]
        specs = parse_specs(methods)
        for spec in specs:  # a typo fails before the data is generated
            AUTOENCODERS.get(parse_spec(spec)[0])
        check_int("--epochs", epochs, min_value=1)
        check_int("--batch-size", batch_size, min_value=1)
        check_positive_float("--lr", lr)
        if n_latents is not None:
            check_int("--n-latents", n_latents, min_value=1)
        check_int("--eval-n", eval_n, min_value=2)
        check_json_out(json_out)
        full = load_factor_data(data)
    except (ValueError, TypeError) as exc:
        raise fail(describe_error(exc)) from None
    if not quiet:
        console.print(
            f"[bold]{full.name}[/]: {len(full):,} images {full.images.shape[1:]}, factors "
            f"{', '.join(full.factor_names)}"
        )

    def line(record: BenchRecord) -> str:
        m = record.metrics
        if "infom" not in m:
            return f"{record.method} (seed {record.seed}): {record.status}"
        return (
            f"{record.method} (seed {record.seed}): InfoM {m['infom']:.3f} InfoE "
            f"{m['infoe']:.3f} InfoC {m['infoc']:.3f} MSE {m['mse']:.5f}"
        )

    # records append after a header line; this suite has no resume (always runs)
    with record_saver(json_out, quiet=quiet, line=line, rerun=True, ctx=ctx) as save:
        try:
            records = run_disentangle_bench(
                full,
                methods=specs,
                seeds=seed_list,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                n_latents=n_latents,
                eval_n=eval_n,
                on_record=save,
            )
        except (ValueError, TypeError) as exc:
            raise fail(describe_error(exc)) from None
        print_disentangle_summary(f"disentangle · {full.name}", records)
        save.done(records)
