"""Synthetic benchmark records for the report tests."""

from __future__ import annotations

import pytest

from embedlab.bench import BenchRecord

FULL_BYTES = 5_000 * 16 * 4  # 5000 ids x dim 16 x float32


def make_records() -> list[BenchRecord]:
    """Several methods x compressions x 2 seeds, one infeasible run, one ``full`` run."""
    recs: list[BenchRecord] = []
    base = {"full": 0.80, "hash": 0.74, "qr": 0.77, "tt_rec": 0.785}
    decay = {"full": 0.0, "hash": 0.012, "qr": 0.008, "tt_rec": 0.004}
    for method, auc in base.items():
        comps = [1.0] if method == "full" else [10.0, 100.0, 1000.0]
        for c in comps:
            for seed in (0, 1):
                if method == "tt_rec" and c == 1000.0:
                    recs.append(
                        BenchRecord(
                            "ctr",
                            "synthetic",
                            method,
                            model="deepfm",
                            compression=c,
                            seed=seed,
                            embedlab_version="0.1.0",
                            status="infeasible",
                            error="rank 1 cores need 3,200 B > budget 320 B",
                        )
                    )
                    continue
                level = {1.0: 0, 10.0: 1, 100.0: 2, 1000.0: 3}[c]
                m = auc - decay[method] * level + 0.002 * seed
                mem = int(FULL_BYTES / c * (0.93 if method == "qr" else 1.0))
                recs.append(
                    BenchRecord(
                        "ctr",
                        "synthetic",
                        method,
                        model="deepfm",
                        compression=c,
                        memory_bytes=mem,
                        metrics={"auc": m, "logloss": 0.45 + (0.8 - m)},
                        timing={"train_s": 3.0 + level, "samples_per_s": 40_000.0 - 3_000 * level},
                        params={
                            "full_bytes": FULL_BYTES,
                            "oracle_auc": 0.8123,
                            "epochs_run": 3,
                            "best_epoch": 2 + seed,
                            "history": _history(m, seed),
                        },
                        seed=seed,
                        embedlab_version="0.1.0",
                    )
                )
    return recs


def _history(auc: float, seed: int) -> list[dict[str, float | int]]:
    """Per-epoch scores ending at ``auc``; seed 1 trains one epoch more."""
    out: list[dict[str, float | int]] = []
    for epoch in range(1, 4 + seed):
        out.append(
            {
                "epoch": epoch,
                "train_loss": 0.6 - 0.05 * epoch,
                "valid_auc": auc - 0.02 * (3 + seed - epoch),
                "valid_logloss": 0.5 - 0.01 * epoch,
            }
        )
    return out


def make_retrieval_records() -> list[BenchRecord]:
    """Four index specs x 2 seeds: recall@10, QPS and RAM bytes per vector."""
    specs = {
        "Flat": (128, 1.0, 9_000.0, 0.0),
        "Int8": (32, 0.987, 20_000.0, 0.0),
        "Binary,Rerank(Flat)": (8, 0.81, 45_000.0, 128.0),
        "PQ8": (8, 0.61, 60_000.0, 0.0),
    }
    recs = []
    for spec, (nbytes, recall, qps, disk) in specs.items():
        for seed in (0, 1):
            recs.append(
                BenchRecord(
                    "retrieval",
                    "rx",
                    spec,
                    model="vectors",
                    compression=128 / nbytes,
                    memory_bytes=nbytes,
                    metrics={"recall@10": min(1.0, recall + 0.004 * seed)},
                    timing={"build_s": 0.01, "qps_1thread": qps * (1 + 0.05 * seed), "p50_ms": 0.1},
                    params={"disk_bytes_per_vector": disk, "k": 10},
                    seed=seed,
                    embedlab_version="0.1.0",
                )
            )
    return recs


@pytest.fixture
def records() -> list[BenchRecord]:
    return make_records()


@pytest.fixture
def retrieval_records() -> list[BenchRecord]:
    return make_retrieval_records()
