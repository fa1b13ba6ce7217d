"""The main job: a quick CTR grid on synthetic data, small enough for 3 minutes on 2 cores."""

from __future__ import annotations

from collections.abc import Callable

from embedlab.bench import BenchRecord, CTRBenchConfig, run_ctr_bench
from embedlab.data import make_ctr

__all__ = ["DEMO_METHODS", "demo_config", "run_demo"]

DEMO_METHODS = ("full", "hash", "qr", "ue", "mde", "tt", "dhe", "robe", "int8")


def demo_config(*, progress: bool = True) -> CTRBenchConfig:
    """DeepFM, dim 16, every fixed-structure table method at 10x and 100x."""
    return CTRBenchConfig(
        model="deepfm",
        methods=DEMO_METHODS,
        compressions=(10.0, 100.0),
        dim=16,
        epochs=3,
        batch_size=1024,
        patience=1,
        progress=progress,
    )


def run_demo(
    *,
    n_samples: int = 60_000,
    progress: bool = True,
    on_record: Callable[[BenchRecord], None] | None = None,
) -> list[BenchRecord]:
    """Train DeepFM with every table method at 10x and 100x on a synthetic FM click log."""
    splits = make_ctr(n_samples, seed=0).split((0.8, 0.1, 0.1), seed=0)
    return run_ctr_bench(splits, demo_config(progress=progress), on_record=on_record)
