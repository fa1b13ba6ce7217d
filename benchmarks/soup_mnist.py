"""Model soups on MNIST t10k: uniform and greedy soups vs the mean and best of their ingredients.

One encoder is trained briefly on digits 0-4 (the shared initialisation); ``n`` copies of
it are fine-tuned with different seeds (batch order, augmentation) and learning rates.
Digits 0-4 are split three ways: train (80%), ``val`` (10%: the greedy soup's held-out
function and how the "best" ingredient is chosen) and ``test`` (10%, never used to choose).
Scores: leave-one-out retrieval (cosine) MAP@R (``--metric``; precision@1 saturates near
0.99 on 0-4) on ``val``, ``test`` and the unseen digits 5-9.

Usage:
    python benchmarks/soup_mnist.py [--data ../shared/data/mnist-t10k] [--loss supcon]
        [--pre-epochs 1] [--epochs 2] [--lrs 1e-3,2e-3,5e-4,3e-3] [--seed 0]
        [--metric map_at_r|precision_at_1]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--loss", default="supcon")
    parser.add_argument("--encoder", default="mlp")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--pre-epochs", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lrs", default="1e-3,2e-3,5e-4,3e-3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--metric", default="map_at_r", choices=("map_at_r", "precision_at_1"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (MNIST t10k IDX files)")
        return 0

    import torch

    from embedlab.bench.metric import load_labeled, metric_splits
    from embedlab.data import LabeledData
    from embedlab.evaluate import retrieval_metrics
    from embedlab.losses import make_loss
    from embedlab.training.encoders import make_encoder
    from embedlab.training.metric import MetricTrainer, embed
    from embedlab.training.soup import greedy_soup, uniform_soup

    torch.set_num_threads(1)
    lrs = [float(v) for v in args.lrs.split(",")]
    seen, unseen = metric_splits(load_labeled(f"mnist:{args.data}"))
    shape = tuple(int(s) for s in seen.x.shape[1:])
    part = np.random.default_rng(args.seed).random(len(seen))
    train = LabeledData(seen.x[part < 0.8], seen.y[part < 0.8])
    val = LabeledData(seen.x[(part >= 0.8) & (part < 0.9)], seen.y[(part >= 0.8) & (part < 0.9)])
    test = LabeledData(seen.x[part >= 0.9], seen.y[part >= 0.9])
    print(
        f"mnist t10k 0-4: {len(train)} train / {len(val)} val / {len(test)} test, 5-9 unseen "
        f"{len(unseen)}; {args.encoder} dim {args.dim}, loss {args.loss}, init {args.pre_epochs} "
        f"epoch(s), then {len(lrs)} ingredients x {args.epochs} epochs, lrs {lrs}",
        flush=True,
    )
    start = time.perf_counter()
    base = make_encoder(args.encoder, args.dim, shape, seed=args.seed)
    MetricTrainer(epochs=args.pre_epochs, seed=args.seed, progress=False).fit(
        base, make_loss(args.loss, dim=args.dim, n_classes=5), train
    )

    def p1(enc: torch.nn.Module, data: LabeledData) -> float:
        return float(retrieval_metrics(embed(enc, data.x), data.y, k=(1,))[args.metric])

    ingredients = []
    for i, lr in enumerate(lrs):
        enc = copy.deepcopy(base)
        MetricTrainer(epochs=args.epochs, lr=lr, seed=args.seed + 100 + i, progress=False).fit(
            enc, make_loss(args.loss, dim=args.dim, n_classes=5), train
        )
        ingredients.append(enc)
        print(
            f"  ingredient {i} lr {lr:g}: val {p1(enc, val):.4f}  test {p1(enc, test):.4f}  "
            f"unseen {p1(enc, unseen):.4f}",
            flush=True,
        )
    probe = copy.deepcopy(base)

    def with_state(state: dict[str, torch.Tensor]) -> torch.nn.Module:
        probe.load_state_dict(state)
        return probe

    greedy = greedy_soup(ingredients, lambda st: p1(with_state(st), val))
    rows: dict[str, dict[str, float]] = {}
    for name, split in (("val", val), ("test", test), ("unseen", unseen)):
        scores = [p1(e, split) for e in ingredients]
        best_by_val = int(np.argmax(greedy.ingredient_scores))
        rows.setdefault("init", {})[name] = p1(base, split)
        rows.setdefault("ingredient mean", {})[name] = float(np.mean(scores))
        rows.setdefault("ingredient best (by val)", {})[name] = scores[best_by_val]
        rows.setdefault("ingredient best (oracle)", {})[name] = float(np.max(scores))
        rows.setdefault("uniform soup", {})[name] = p1(with_state(uniform_soup(ingredients)), split)
        rows.setdefault("greedy soup", {})[name] = p1(with_state(greedy.state_dict), split)
    print(f"\ngreedy soup kept ingredients {greedy.kept} (history {greedy.history})")
    print(f"{args.metric:<26}{'val':>9}{'test':>9}{'unseen':>9}")
    for name, r in rows.items():
        print(f"{name:<26}{r['val']:9.4f}{r['test']:9.4f}{r['unseen']:9.4f}")
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "kept": greedy.kept}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
