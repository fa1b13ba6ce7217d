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
                        params={"full_bytes": FULL_BYTES, "oracle_auc": 0.8123},
                        seed=seed,
                        embedlab_version="0.1.0",
                    )
                )
    return recs


@pytest.fixture
def records() -> list[BenchRecord]:
    return make_records()
