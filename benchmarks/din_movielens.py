"""DIN vs DeepFM (mean-pooled history) on movielens-seq, tuned with the same budget.

Every (variant, seed) trains the SAME candidate training settings (``CANDIDATES``: learning
rate and embedding L2; up to ``--epochs`` epochs with early stopping on valid AUC) and keeps
the candidate with the best validation AUC; its test AUC and gAUC (per-user AUC weighted by
impressions) are reported, mean +- std over the seeds. The split is per user in time (fixed);
seeds change the initialisation and the shuffling.

Variants (``--variants``):
- ``din``: DIN whose history items carry their genre (movie + first-genre embeddings
  concatenated, for the candidate too), as the paper's goods carry their category, with the
  paper's text's unit (raw weights, Dice: ``attention_norm=none``, pinned because DIN's
  default is now the scaled softmax of ``din-softmax``);
- ``deepfm``: DeepFM with the same history mean-pooled (movie and genre: two extra fields);
- ``din-ref``: ``din`` with the authors' code's unit (scaled softmax, sigmoid activations);
  ``din-softmax``: the scaled softmax with Dice;
- ``din-ids`` / ``deepfm-ids``: the same with the old movie-id-only history.

Measured (seeds 0-2, 3 candidates, up to 6 epochs, single thread; best candidate on valid
AUC; mean +- std; the ``*-ids`` rows ran ``--variants din-ids,deepfm-ids --candidates 1``):

    din-ref      AUC 0.7607 +- 0.0014   gAUC 0.6513 +- 0.0024
    din-softmax  AUC 0.7607 +- 0.0014   gAUC 0.6513 +- 0.0025
    din          AUC 0.7486 +- 0.0056   gAUC 0.6355 +- 0.0099
    deepfm       AUC 0.7598 +- 0.0011   gAUC 0.6490 +- 0.0037
    din-ids      AUC 0.7419 +- 0.0029   gAUC 0.6247 +- 0.0010
    deepfm-ids   AUC 0.7596 +- 0.0009   gAUC 0.6478 +- 0.0045

Usage:
    nice -n 15 python benchmarks/din_movielens.py [--data ../shared/data/ml-latest-small]
        [--seeds 0,1,2] [--epochs 6] [--variants din,deepfm] [--candidates 3]
        [--json /tmp/din.jsonl]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-latest-small"

#: (lr, embedding_l2): the equal search budget of every variant (the first is the default)
CANDIDATES = ((1e-3, 0.0), (2e-3, 1e-5), (5e-4, 1e-4))
VARIANTS = {
    "din": ("din(attention_norm=none)", True),
    "deepfm": ("deepfm", True),
    "din-ref": ("din(attention_norm=softmax, attention_activation=sigmoid)", True),
    "din-softmax": ("din(attention_norm=softmax)", True),
    "din-ids": ("din(attention_norm=none)", False),
    "deepfm-ids": ("deepfm", False),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--variants", default="din,deepfm")
    parser.add_argument("--candidates", type=int, default=len(CANDIDATES))
    parser.add_argument("--json", type=Path, default=None, help="append one line per trial")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (MovieLens ml-latest-small)")
        return 0

    import numpy as np
    import torch

    from embedlab.data import load_movielens_sequences
    from embedlab.models import make_model
    from embedlab.tables import make_table
    from embedlab.training import CTRTrainer, gauc_score

    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = args.variants.split(",")
    candidates = CANDIDATES[: args.candidates]
    splits = {g: load_movielens_sequences(args.data, history_genre=g) for g in (True, False)}
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    for seed in seeds:
        for variant in variants:
            model_name, genre = VARIANTS[variant]
            data = splits[genre]
            best: tuple[float, float, float] | None = None
            for c, (lr, l2) in enumerate(candidates):
                table = make_table("full", data.fields, args.dim, seed=seed)
                model = make_model(
                    model_name,
                    table,
                    seed=seed,
                    history_field=data.train.history_field,
                    history_side_fields=data.train.history_side_fields,
                )
                trainer = CTRTrainer(
                    epochs=args.epochs,
                    patience=args.patience,
                    lr=lr,
                    embedding_l2=l2,
                    seed=seed,
                    progress=False,
                )
                start = time.perf_counter()
                result = trainer.fit(model, data.train, data.valid)
                probs = trainer.predict(model, data.test)
                test = trainer.evaluate(model, data.test)
                assert data.test.groups is not None
                gauc = gauc_score(data.test.labels, probs, data.test.groups)
                valid = float(result.best_valid_auc or float("nan"))
                row = {
                    "variant": variant,
                    "seed": seed,
                    "candidate": c,
                    "lr": lr,
                    "embedding_l2": l2,
                    "valid_auc": valid,
                    "test_auc": test["auc"],
                    "test_gauc": gauc,
                    "best_epoch": result.best_epoch,
                    "seconds": time.perf_counter() - start,
                }
                print(json.dumps(row), flush=True)
                if args.json is not None:
                    with args.json.open("a") as fh:
                        fh.write(json.dumps(row) + "\n")
                if best is None or valid > best[0]:
                    best = (valid, test["auc"], gauc)
            assert best is not None
            results[variant].append((best[1], best[2]))
    print(f"\nmovielens-seq, {len(candidates)} candidates per run, seeds {seeds}")
    print(f"{'variant':<12} {'test AUC':>18} {'test gAUC':>18}")
    for variant, rows in results.items():
        auc, gauc = np.array(rows).T
        print(
            f"{variant:<12} {auc.mean():.4f} +- {auc.std(ddof=1) if len(auc) > 1 else 0:.4f}"
            f"   {gauc.mean():.4f} +- {gauc.std(ddof=1) if len(gauc) > 1 else 0:.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
