"""SESA on ml-latest-small: genre-named dimensions vs a latent model of the same dimension.

Positives are ratings >= 4; per user, a random ``--test-frac`` of them is held out.
Both models have ``C + r`` dimensions (``C`` = the genres, ``(no genres listed)``
dropped) and an item bias, are trained with BPR on the same pairs and negatives; SESA adds
the BCE concept loss on the item genre dimensions (``--concept-weight``), the latent
model has ``concept_weight=0``. Metric: mean per-user AUC of held-out positives vs every
item the user never rated. Sanity checks: the share of comedies among the top ``k``
items of the "Comedy" dimension (for the latent model that dimension is unnamed, so its
share is a chance-level control); ``concept_auc``, the mean per-genre AUC of the item
concept dimensions against the (training) genre labels; ``user_pref_corr``, the mean per-genre
correlation across users of a user's value on a genre dimension with that genre's share
among the user's training positives. ``--hide-genres 0.2`` trains without the genres of a
random 20% of the items and scores those items' concept dimensions against their true genres
(``*_heldout_concept_auc``: are the named dimensions learnt from the ratings alone?;
``*_10pos``: only hidden items with >= 10 training positives).

Usage:
    python benchmarks/sesa_movielens.py [--data ../shared/data/ml-latest-small]
        [--residual 13] [--epochs 20] [--seeds 0,1,2] [--concept-weight 1.0] [--hide-genres 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import torch

from embedlab.training.metrics import auc_score
from embedlab.training.sesa import SESA, explain_dimension, fit_sesa, ranking_auc

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-latest-small"


def load(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray, list[str]]:
    """users, items, ratings (dense ids), genre names, (n_items, C) indicators, titles."""
    ratings = pd.read_csv(path / "ratings.csv")
    movies = pd.read_csv(path / "movies.csv").set_index("movieId")
    users, _ = pd.factorize(ratings["userId"])
    items, item_ids = pd.factorize(ratings["movieId"])
    genres = movies.loc[item_ids, "genres"].str.split("|")
    names = sorted({g for gs in genres for g in gs} - {"(no genres listed)"})
    col = {g: c for c, g in enumerate(names)}
    ind = np.zeros((len(item_ids), len(names)), dtype=np.float32)
    for row, gs in enumerate(genres):
        for g in gs:
            if g in col:
                ind[row, col[g]] = 1.0
    titles = movies.loc[item_ids, "title"].tolist()
    return users, items, ratings["rating"].to_numpy(), names, ind, titles


def split(
    users: np.ndarray, items: np.ndarray, frac: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, test) over the given positive pairs: per user, ``frac`` held out."""
    rng = np.random.default_rng(seed)
    test = np.zeros(users.size, dtype=bool)
    for idx in pd.Series(np.arange(users.size)).groupby(users).indices.values():
        n_test = round(frac * len(idx))
        if 0 < n_test < len(idx):
            test[rng.choice(idx, n_test, replace=False)] = True
    return ~test, test


def mean_concept_auc(labels: np.ndarray, logits: np.ndarray) -> float:
    """Mean over concepts (with both classes present) of the AUC of a concept dimension."""
    aucs = [
        auc_score(labels[:, c], logits[:, c])
        for c in range(labels.shape[1])
        if 0 < labels[:, c].sum() < labels.shape[0]
    ]
    return float(np.mean(aucs))


def preference_corr(model: SESA, users: np.ndarray, items: np.ndarray, ind: np.ndarray) -> float:
    """Mean over concepts of the Pearson correlation, across users, between a user's value on
    the concept dimension and the share of that concept among the user's training positives."""
    counts = np.zeros((model.n_users, ind.shape[1]))
    np.add.at(counts, users, ind[items])
    share = counts / np.maximum(np.bincount(users, minlength=model.n_users), 1)[:, None]
    weights = model.user.detach().numpy()[:, : ind.shape[1]]
    corrs = [np.corrcoef(weights[:, c], share[:, c])[0, 1] for c in range(ind.shape[1])]
    return float(np.nanmean(corrs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--residual", type=int, default=13)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--concept-weight", type=float, default=1.0)
    parser.add_argument("--test-frac", type=float, default=0.2)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument(
        "--hide-genres",
        type=float,
        default=0.0,
        help="share of items whose genres are not used in training (their concept dims "
        "are then scored against the hidden genres: heldout_concept_auc)",
    )
    args = parser.parse_args()
    if not (args.data / "ratings.csv").is_file():
        print(f"SKIP: {args.data}/ratings.csv not found")
        return 0
    torch.set_num_threads(1)
    users, items, rating, names, ind, titles = load(args.data)
    n_users, n_items = int(users.max()) + 1, ind.shape[0]
    pos = rating >= 4
    pu, pi = users[pos], items[pos]
    comedy = names.index("Comedy")
    print(
        f"users={n_users} items={n_items} positives={pu.size} concepts={len(names)} "
        f"residual={args.residual} dim={len(names) + args.residual} "
        f"comedy base rate={ind[:, comedy].mean():.3f}"
    )
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        train, test = split(pu, pi, args.test_frac, seed)
        row: dict[str, object] = {"seed": seed}
        hidden = np.random.default_rng(seed + 1000).random(n_items) < args.hide_genres
        labelled = np.flatnonzero(~hidden) if hidden.any() else None
        for label, weight in (("sesa", args.concept_weight), ("latent", 0.0)):
            model = SESA(n_users, n_items, names, ind, residual_dim=args.residual, seed=seed)
            t0 = time.perf_counter()
            fit_sesa(
                model,
                pu[train],
                pi[train],
                epochs=args.epochs,
                lr=args.lr,
                concept_weight=weight,
                weight_decay=args.weight_decay,
                seed=seed,
                labelled_items=labelled,
            )
            secs = time.perf_counter() - t0
            auc = ranking_auc(model.all_scores(), pu[test], pi[test], users, items)
            with torch.no_grad():
                logits = model.concept_logits(torch.arange(n_items)).numpy()
            concept_auc = mean_concept_auc(ind[~hidden], logits[~hidden])
            info = explain_dimension(model, "Comedy", args.k)
            user_corr = preference_corr(model, pu[train], pi[train], ind)
            if hidden.any():
                popular = hidden & (np.bincount(pi[train], minlength=n_items) >= 10)
                row[label + "_heldout_concept_auc"] = round(
                    mean_concept_auc(ind[hidden], logits[hidden]), 4
                )
                row[label + "_heldout_concept_auc_10pos"] = round(
                    mean_concept_auc(ind[popular], logits[popular]), 4
                )
            row[label] = {
                "auc": round(auc, 4),
                "concept_auc": round(concept_auc, 4),
                "comedy_top_share": round(float(info["concept_share"]), 3),
                "user_pref_corr": round(user_corr, 3),
                "train_s": round(secs, 1),
            }
            if label == "sesa" and seed == int(args.seeds.split(",")[0]):
                top = [titles[t] for t in info["top_items"][:10]]
                print("top-10 of SESA's Comedy dimension:", json.dumps(top))
        row["gap"] = round(row["latent"]["auc"] - row["sesa"]["auc"], 4)  # type: ignore[index]
        print(json.dumps(row))
        rows.append(row)
    gaps = [float(r["gap"]) for r in rows]  # type: ignore[arg-type]
    print(f"mean AUC gap (latent - sesa) over {len(rows)} seeds: {np.mean(gaps):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
