"""``python -m embedlab.train ctr ...``: train one CTR model, in one process or under torchrun.

    python -m embedlab.train ctr --data synthetic --method qr --compression 100 -o run/
    torchrun --nproc-per-node 2 -m embedlab.train ctr --data synthetic -o run/ --batch-size 4096

A thin shell over :func:`embedlab.training.ctr_run.run_ctr`: parsing and printing only.
Every rank prints errors as one ``error: ...`` line and exits with code 2; rank 0 prints the
final metrics as one JSON line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from embedlab.cli import RootGroup
from embedlab.training.ctr_run import CTRRunConfig, run_ctr

__all__ = ["app", "main"]

app = typer.Typer(
    name="embedlab.train",
    help="Train models; launch with torchrun for several processes.",
    cls=RootGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """Train models; launch with torchrun for several processes."""


@app.command("ctr")
def ctr(
    data: str = typer.Option(..., "--data", help="data spec: synthetic, frappe:DIR, shards:DIR"),
    out: Path = typer.Option(..., "-o", "--out", help="output folder (rank 0 writes it)"),
    model: str = typer.Option("deepfm", "--model", help="model spec, e.g. deepfm"),
    method: str = typer.Option("qr", "--method", help="table spec, e.g. qr, tt, full"),
    compression: float = typer.Option(100.0, "--compression", help="table budget factor"),
    dim: int = typer.Option(16, "--dim", help="embedding dimension"),
    epochs: int = typer.Option(10, "--epochs"),
    batch_size: int = typer.Option(2048, "--batch-size", help="GLOBAL batch over all ranks"),
    lr: float = typer.Option(1e-3, "--lr"),
    patience: int = typer.Option(2, "--patience", help="epochs without gain; 0: never stop"),
    seed: int = typer.Option(0, "--seed"),
    max_train_seconds: float = typer.Option(
        0.0, "--max-train-seconds", help="stop training after this long; 0: no limit"
    ),
    resume: bool = typer.Option(False, "--resume", help="continue from OUT/checkpoint"),
    timeout: float = typer.Option(600.0, "--timeout", help="seconds a rank waits for others"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train a CTR model with DDP over the ranks torchrun starts (or in this process)."""
    config = CTRRunConfig(
        data=data,
        model=model,
        method=method,
        compression=compression,
        dim=dim,
        seed=seed,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        patience=None if patience == 0 else patience,
        max_train_seconds=None if max_train_seconds <= 0 else max_train_seconds,
    )
    metrics = run_ctr(config, out, resume=resume, timeout_s=timeout, progress=progress)
    if os.environ.get("RANK", "0") == "0":  # torchrun's rank; one line from rank 0 only
        summary = {k: v for k, v in metrics.items() if k != "history"}
        typer.echo(json.dumps(summary))


def main() -> None:
    """Entry point of ``python -m embedlab.train``."""
    app()


if __name__ == "__main__":
    main()
