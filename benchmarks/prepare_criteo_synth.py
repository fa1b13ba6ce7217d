"""Streamed prepare of a synthetic Criteo-shaped log: rows/s and peak RSS.

1. Writes ``--rows`` rows (default 20M) of a Criteo-shaped TSV log in a stream (one chunk
   in memory): label, 13 integer counts (noise, 10% missing), 26 categorical columns of
   8-hex-digit tokens whose ids follow a Zipf law over the Kaggle Criteo cardinalities
   (capped at ``--max-card``, 10M), labels drawn from a planted FM over the categorical
   ids (:class:`embedlab.data.synthetic.PlantedCTR`, the model of ``make_ctr``).
2. Writes ``LOG.oracle.json`` next to the log: the AUC of the true click probabilities
   on the valid and test rows of prepare's default split (seed 0, 80/10/10) — the best
   AUC a model trained on the shards can reach — for the trainer benchmark to read.
3. Runs ``prepare_ctr("criteo:LOG", ...)`` in a child process and prints one JSON line:
   rows, seconds, rows/s and the child's peak RSS (``VmHWM``).

Usage:
    python benchmarks/prepare_criteo_synth.py [--rows 20000000] [--dir /tmp/criteo-synth]
        [--min-count 10] [--clean]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

# Kaggle Criteo (display advertising challenge) distinct values of C1..C26
KAGGLE_CARDS = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194,
    27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)  # fmt: skip
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_tokens(ids: np.ndarray, field: int) -> pa.Array:
    """``(n,)`` ids -> 8-hex-digit tokens (a bijection per field, like Criteo's hashed values)."""
    with np.errstate(over="ignore"):
        v = (ids.astype(np.uint64) * np.uint64(2654435761) + np.uint64(field * 40503)) & np.uint64(
            0xFFFFFFFF
        )
    shifts = np.arange(28, -1, -4, dtype=np.uint64)
    digits = _HEX[((v[:, None] >> shifts) & np.uint64(15)).astype(np.intp)]  # (n, 8) bytes
    offsets = np.arange(0, 8 * len(ids) + 1, 8, dtype=np.int32)
    return pa.StringArray.from_buffers(len(ids), pa.py_buffer(offsets), pa.py_buffer(digits))


def write_log(path: Path, rows: int, cards: tuple[int, ...], chunk_rows: int) -> dict[str, float]:
    from embedlab.data._keys import split_of_rows
    from embedlab.data.synthetic import PlantedCTR
    from embedlab.training.metrics import auc_score

    model = PlantedCTR(cards, factor_dim=4, seed=0)
    rng = np.random.default_rng(1)
    names = ["label"] + [f"I{i}" for i in range(1, 14)] + [f"C{i}" for i in range(1, 27)]
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    kept: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {1: [], 2: []}  # valid, test
    start = 0
    with pacsv.CSVWriter(
        path, pa.schema([(n, pa.string()) for n in names]), write_options=options
    ) as w:
        for ids, prob, labels in model.iter_chunks(rows, chunk_rows=chunk_rows, seed=2):
            n = len(labels)
            cols = [pa.array(labels.astype(np.int8)).cast(pa.string())]
            counts = np.floor(rng.lognormal(1.5, 1.5, size=(n, 13))).astype(np.int64)
            missing = rng.random((n, 13)) < 0.1
            for j in range(13):
                cols.append(pa.array(counts[:, j], mask=missing[:, j]).cast(pa.string()))
            for j in range(26):
                cols.append(hex_tokens(ids[:, j], j))
            w.write_table(pa.Table.from_arrays(cols, names=names))
            split = split_of_rows(np.arange(start, start + n), seed=0, fractions=(0.8, 0.1, 0.1))
            for s in kept:
                kept[s].append((prob[split == s], labels[split == s]))
            start += n
    out = {}
    for s, name in ((1, "valid"), (2, "test")):
        prob = np.concatenate([p for p, _ in kept[s]])
        labels = np.concatenate([y for _, y in kept[s]])
        out[f"oracle_auc_{name}"] = round(auc_score(labels, prob), 6)
        out[f"positive_rate_{name}"] = round(float(labels.mean()), 6)
    return out


_CHILD = """
import json, sys, time
from embedlab.data import prepare_ctr
t0 = time.perf_counter()
shards = prepare_ctr(sys.argv[1], sys.argv[2], min_count=int(sys.argv[3]), force=True)
seconds = time.perf_counter() - t0
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(json.dumps({"seconds": seconds, "peak_rss_mb": int(hwm) / 1024,
                  "n_rows": {s: shards.n_rows(s) for s in ("train", "valid", "test")},
                  "cardinalities": [f.cardinality for f in shards.fields]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/criteo-synth"))
    ap.add_argument("--max-card", type=int, default=10_000_000)
    ap.add_argument("--min-count", type=int, default=10)
    ap.add_argument("--chunk-rows", type=int, default=200_000)
    ap.add_argument("--clean", action="store_true", help="delete the log and shards at the end")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    log = args.dir / f"criteo-synth-{args.rows}.tsv"
    cards = tuple(min(c, args.max_card) for c in KAGGLE_CARDS)
    t0 = time.perf_counter()
    oracle = write_log(log, args.rows, cards, args.chunk_rows)
    write_s = time.perf_counter() - t0
    meta = {
        "rows": args.rows,
        "cardinalities": cards,
        "split": {"seed": 0, "fractions": [0.8, 0.1, 0.1]},
        "generator": "PlantedCTR(factor_dim=4, seed=0), chunks seed=2",
        **oracle,
    }
    log.with_suffix(".oracle.json").write_text(json.dumps(meta, indent=2) + "\n")
    shards = args.dir / f"criteo-synth-{args.rows}-shards"
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, f"criteo:{log}", str(shards), str(args.min_count)],
        capture_output=True, text=True, env=os.environ.copy(), check=False,
    )  # fmt: skip
    if child.returncode != 0:
        sys.exit(f"prepare failed:\n{child.stderr}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    record = {
        "benchmark": "prepare_criteo_synth",
        "rows": args.rows,
        "log_bytes": log.stat().st_size,
        "write_log_s": round(write_s, 1),
        "prepare_s": round(result["seconds"], 1),
        "rows_per_s": round(args.rows / result["seconds"]),
        "peak_rss_mb": round(result["peak_rss_mb"]),
        "shards_bytes": sum(p.stat().st_size for p in shards.rglob("*.parquet")),
        "n_rows": result["n_rows"],
        "max_cardinality": max(result["cardinalities"]),
        "sum_cardinality": sum(result["cardinalities"]),
        **oracle,
    }
    print(json.dumps(record))
    if args.clean:
        log.unlink()
        import shutil

        shutil.rmtree(shards)


if __name__ == "__main__":
    main()
