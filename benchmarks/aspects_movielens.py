"""Aspect embeddings on MovieLens: per-aspect nDCG@10 of generic MiniLM vs a trained projection.

Items: the movies of ml-latest-small with at least ``--min-ratings`` ratings; item text =
title (+ its users' tags, most frequent first). Vectors: the packaged MiniLM
(:func:`embedlab.embed_texts`), frozen. Two aspects, each with its own ground truth:

- ``genre``: relevance of j to i = Jaccard of their genre sets; training positives = pairs of
  training items with Jaccard >= ``--genre-jaccard`` (up to ``--pairs-per-item`` random ones per
  item);
- ``co-rating``: relevance = number of users who rated both >= 4; training positives = each
  training item's top ``--pairs-per-item`` co-rated training items (count >= ``--min-co``).

Split: a seeded ``--test-frac`` of the ITEMS is held out; training sees neither their vectors
nor any pair touching them. Evaluation: every test item queries the other test items by cosine;
nDCG@10 against the aspect's relevance (queries without relevant items skipped). Columns:
``generic`` (MiniLM cosine), ``trained`` (the aspect's projection), ``other`` (the other aspect's
projection: shows the specialisation).

Defaults (3 epochs, temperature 0.3, lr 1e-3) were chosen on a validation split of the
training items of seed 0 (never on test items): longer training over-fits the 384 x 384 maps
(training-item nDCG keeps rising, held-out falls) and the paper's temperature 0.05 was worse.

Run: ``PYTHONPATH=src python benchmarks/aspects_movielens.py --seeds 0,1,2``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import scipy.sparse as sp  # type: ignore[import-untyped]
import torch

from embedlab import embed_texts
from embedlab.training.aspects import aspect_ndcg, train_aspects


def load_items(
    folder: Path, min_ratings: int, max_tags: int
) -> tuple[list[str], list[set[str]], np.ndarray]:
    """Texts, genre sets and the (items, items) co-rating counts (ratings >= 4)."""
    movies = pd.read_csv(folder / "movies.csv")
    ratings = pd.read_csv(folder / "ratings.csv")
    tags = pd.read_csv(folder / "tags.csv")
    counts = ratings.groupby("movieId").size()
    keep = movies[movies.movieId.isin(counts[counts >= min_ratings].index)].reset_index(drop=True)
    pos = {int(m): i for i, m in enumerate(keep.movieId)}
    tags["tag"] = tags["tag"].astype(str).str.strip().str.lower()
    tag_lists: dict[int, list[str]] = {}
    for movie, group in tags.groupby("movieId"):
        tag_lists[int(movie)] = list(group["tag"].value_counts().index[:max_tags])
    texts = []
    for movie, title in zip(keep.movieId, keep.title, strict=True):
        t = tag_lists.get(int(movie), [])
        texts.append(f"{title}. Tags: {', '.join(t)}" if t else str(title))
    genres = [set() if g == "(no genres listed)" else set(g.split("|")) for g in keep.genres]
    liked = ratings[(ratings.rating >= 4) & ratings.movieId.isin(pos)]
    users = liked.userId.astype("category").cat.codes.to_numpy()
    cols = liked.movieId.map(pos).to_numpy()
    m = sp.csr_matrix((np.ones(len(cols), dtype=np.float32), (users, cols)))
    m = sp.csr_matrix(m, shape=(m.shape[0], len(keep)))
    co = np.asarray((m.T @ m).todense(), dtype=np.float64)
    np.fill_diagonal(co, 0.0)
    return texts, genres, co


def jaccard(genres: list[set[str]]) -> np.ndarray:
    """(n, n) Jaccard of genre sets (0 where both are empty)."""
    names = sorted(set().union(*genres))
    onehot = np.zeros((len(genres), len(names)))
    for i, g in enumerate(genres):
        onehot[i, [names.index(x) for x in g]] = 1.0
    inter = onehot @ onehot.T
    size = onehot.sum(1)
    union = size[:, None] + size[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def sample_pairs(
    rel: np.ndarray, rows: np.ndarray, *, threshold: float, per_item: int, top: bool, seed: int
) -> np.ndarray:
    """Pairs (a, b) of ``rows`` with rel >= threshold: the top ``per_item`` b per a, or random."""
    rng = np.random.default_rng(seed)
    sub = rel[np.ix_(rows, rows)].copy()
    np.fill_diagonal(sub, -np.inf)
    out = []
    for i in range(rows.size):
        cand = np.flatnonzero(sub[i] >= threshold)
        if cand.size == 0:
            continue
        if top:
            order = np.lexsort((rng.random(cand.size), -sub[i, cand]))
            pick = cand[order[:per_item]]
        else:
            pick = rng.choice(cand, min(per_item, cand.size), replace=False)
        out.extend((rows[i], rows[j]) for j in pick)
    return np.asarray(out, dtype=np.int64)


def main() -> None:
    """Train and compare on each seed; prints a table per seed and the mean over seeds."""
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="../shared/data/ml-latest-small")
    p.add_argument("--seeds", default="0")
    p.add_argument("--min-ratings", type=int, default=10)
    p.add_argument("--max-tags", type=int, default=10)
    p.add_argument("--test-frac", type=float, default=0.2)
    p.add_argument("--genre-jaccard", type=float, default=0.5)
    p.add_argument("--min-co", type=float, default=3)
    p.add_argument("--pairs-per-item", type=int, default=10)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--temperature", type=float, default=0.3)
    a = p.parse_args()
    torch.set_num_threads(1)
    t0 = time.time()
    texts, genres, co = load_items(Path(a.data), a.min_ratings, a.max_tags)
    x = embed_texts(texts)
    rel = {"genre": jaccard(genres), "co-rating": co}
    took = time.time() - t0
    print(f"{len(texts)} items (>= {a.min_ratings} ratings), MiniLM {x.shape}, {took:.0f} s")
    seeds = [int(s) for s in a.seeds.split(",")]
    results: dict[str, dict[str, list[float]]] = {
        name: {"generic": [], "trained": [], "other": []} for name in rel
    }
    for seed in seeds:
        perm = np.random.default_rng(seed).permutation(len(texts))
        n_test = round(a.test_frac * len(texts))
        test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        pairs = {
            "genre": sample_pairs(
                rel["genre"], train, threshold=a.genre_jaccard, per_item=a.pairs_per_item,
                top=False, seed=seed,
            ),
            "co-rating": sample_pairs(
                rel["co-rating"], train, threshold=a.min_co, per_item=a.pairs_per_item,
                top=True, seed=seed,
            ),
        }  # fmt: skip
        t1 = time.time()
        model = train_aspects(
            x,
            pairs,
            epochs=a.epochs,
            batch_size=a.batch_size,
            lr=a.lr,
            weight_decay=a.weight_decay,
            temperature=a.temperature,
            seed=seed,
        )
        emb = model.transform(x[test])
        sizes = {k: len(v) for k, v in pairs.items()}
        print(f"seed {seed}: {len(train)} train / {len(test)} test items, pairs {sizes}, "
              f"trained in {time.time() - t1:.0f} s")  # fmt: skip
        for name, r in rel.items():
            gains = r[np.ix_(test, test)]
            other = "co-rating" if name == "genre" else "genre"
            row = {
                "generic": aspect_ndcg(x[test], gains),
                "trained": aspect_ndcg(emb[name], gains),
                "other": aspect_ndcg(emb[other], gains),
            }
            for k, v in row.items():
                results[name][k].append(v)
            print(f"  {name:10s} nDCG@10 generic {row['generic']:.4f}  trained "
                  f"{row['trained']:.4f}  other-aspect map {row['other']:.4f}")  # fmt: skip
    print(f"mean ± std over seeds {seeds}:")
    for name, cols in results.items():
        cells = "  ".join(f"{k} {np.mean(v):.4f} ± {np.std(v):.4f}" for k, v in cols.items())
        print(f"  {name:10s} {cells}")


if __name__ == "__main__":
    main()
