"""Our losses against pytorch-metric-learning (PML) inside the same training, MNIST t10k.

Unseen-class protocol of ``metric_mnist.py``: the small CNN (dim 64) trained on digits 0-4
(10% held out to pick the epoch), leave-one-out retrieval on 5-9. Four methods, each
trained with the same :class:`MetricTrainer` settings and seed, for several seeds:

- ``ours triplet+semihard``: ``TripletLoss(margin, miner=SemiHardMiner(margin))``;
- ``pml triplet+semihard``: PML's ``TripletMarginLoss(margin)`` +
  ``TripletMarginMiner(margin, type_of_triplets="semihard")``, both on squared L2 of
  normalised embeddings (our default distance; PML's default is non-squared);
- ``ours supcon`` / ``pml supcon``: ``SupConLoss(temperature)`` (cosine) on both sides.

Both sides reach the trainer as plain callables ``(embeddings, labels) -> scalar``. The
callable also times the loss and its miner, forward and backward with respect to the
embeddings, on the real training batches (it runs them on a detached copy and hands the
trainer a surrogate with the same value and the same gradient). Two throughput figures:
``in-training`` (total loss+miner time of a run, pml / ours, seed by seed; runs are
sequential, so machine load can differ between them) and ``interleaved`` (after training,
the embeddings of the first training batches timed ours, pml, ours, pml, ...; median).
A ratio >= 1 means ours is not slower. Times are the calling thread's CPU time
(``time.thread_time``), not wall-clock: on a shared machine wall-clock times of
millisecond calls are dominated by waiting for a core (30 ms scheduler slices); with one
torch thread (``--threads 1``) the loss, its miner and their backward run on the calling
thread, so its CPU time is their cost. With more threads the figures undercount.

Usage:
    python benchmarks/metric_vs_pml.py [--data ../shared/data/mnist-t10k] [--epochs 5]
        [--seeds 0,1,2] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from embedlab.training.metric import LossFn

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


class TimedLoss:
    """``fn`` as a trainer loss callable that accumulates fn's forward + backward CPU time."""

    def __init__(self, fn: LossFn) -> None:
        self.fn = fn
        self.seconds = 0.0
        self.calls = 0

    def grad(self, emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Loss value and gradient with respect to ``emb`` (timed)."""
        leaf = emb.detach().requires_grad_(True)
        start = time.thread_time()
        value = self.fn(leaf, labels)
        value.backward()
        self.seconds += time.thread_time() - start
        self.calls += 1
        g = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
        return g, float(value.detach())

    def __call__(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        g, value = self.grad(emb, labels)
        # same value as fn, same gradient to the encoder: d/d emb of <emb, g> is g
        inner = (emb * g).sum()
        return inner - inner.detach() + value


def make_methods(margin: float, temperature: float) -> dict[str, Callable[[], LossFn]]:
    from pytorch_metric_learning import distances as pml_d
    from pytorch_metric_learning import losses as pml_l
    from pytorch_metric_learning import miners as pml_m

    from embedlab.losses import SupConLoss, TripletLoss
    from embedlab.miners import SemiHardMiner

    def pml_triplet() -> LossFn:
        sq = pml_d.LpDistance(power=2)  # normalize_embeddings=True by default
        loss = pml_l.TripletMarginLoss(margin=margin, distance=sq)
        miner = pml_m.TripletMarginMiner(margin=margin, type_of_triplets="semihard", distance=sq)

        def fn(e: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = loss(e, y, miner(e, y))
            return out

        return fn

    return {
        "ours triplet+semihard": lambda: TripletLoss(
            margin=margin, miner=SemiHardMiner(margin=margin)
        ),
        "pml triplet+semihard": pml_triplet,
        "ours supcon": lambda: SupConLoss(temperature=temperature),
        "pml supcon": lambda: pml_l.SupConLoss(temperature=temperature),
    }


def holdout(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):  # type: ignore[no-untyped-def]
    """The metric bench's rule: a seeded Bernoulli(fraction) mask picks the valid samples."""
    from embedlab.data import LabeledData

    mask = np.random.default_rng(seed).random(len(y)) < fraction
    return LabeledData(x[~mask], y[~mask]), LabeledData(x[mask], y[mask])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--margin", type=float, default=0.2)
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--timing-batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (MNIST t10k IDX files)")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)

    from embedlab.bench.metric import load_labeled, metric_splits
    from embedlab.evaluate import retrieval_metrics
    from embedlab.training.encoders import make_encoder
    from embedlab.training.metric import MetricTrainer, balanced_batches, embed

    seeds = [int(s) for s in args.seeds.split(",")]
    train, test = metric_splits(load_labeled(f"mnist:{args.data}"))
    test_y = np.searchsorted(np.unique(test.y), test.y)
    shape = tuple(int(s) for s in train.x.shape[1:])
    methods = make_methods(args.margin, args.temperature)
    print(
        f"mnist t10k: {len(train)} train (0-4), {len(test)} test (5-9); cnn dim {args.dim}, "
        f"{args.epochs} epochs, batch {args.batch_size} (5 classes x 25), lr {args.lr}, "
        f"seeds {seeds}, margin {args.margin}, temperature {args.temperature}, "
        f"{torch.get_num_threads()} torch thread(s)",
        flush=True,
    )
    runs: list[dict[str, float | str]] = []
    start = time.perf_counter()
    for seed in seeds:
        fit_part, valid_part = holdout(train.x, train.y, 0.1, seed)
        # the batches the interleaved timing replays: the first ones of an epoch
        batches = balanced_batches(fit_part.y, args.batch_size, 4, np.random.default_rng(seed))
        batches = batches[: args.timing_batches]
        timed: dict[str, TimedLoss] = {}
        encoders = {}
        for name, build in methods.items():
            timed[name] = TimedLoss(build())
            encoder = make_encoder("cnn", args.dim, shape, seed=seed)
            trainer = MetricTrainer(
                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed,
                progress=False,
            )  # fmt: skip
            res = trainer.fit(encoder, timed[name], fit_part, valid_part)
            m = retrieval_metrics(embed(encoder, test.x), test_y, k=(1,))
            encoders[name] = encoder
            run: dict[str, float | str] = {
                "method": name,
                "seed": seed,
                "precision_at_1": m["precision_at_1"],
                "map_at_r": m["map_at_r"],
                "best_epoch": res.best_epoch,
                "train_s": res.train_seconds,
                "loss_ms_per_step": 1e3 * timed[name].seconds / max(1, timed[name].calls),
                "loss_s_total": timed[name].seconds,
            }
            runs.append(run)
            print(
                f"  seed {seed} {name:<22} P@1 {m['precision_at_1']:.3f}  "
                f"MAP@R {m['map_at_r']:.3f}  best epoch {res.best_epoch}  "
                f"loss+miner {run['loss_ms_per_step']:.2f} ms/step  "
                f"train {res.train_seconds:.0f} s",
                flush=True,
            )
        # interleaved timing on real embeddings: ours / pml alternate on the same batches
        for pair in (
            ("ours triplet+semihard", "pml triplet+semihard"),
            ("ours supcon", "pml supcon"),
        ):
            enc = encoders[pair[0]]
            with torch.no_grad():
                embs = [
                    (enc(torch.from_numpy(fit_part.x[b])), torch.from_numpy(fit_part.y[b]))
                    for b in batches
                ]
            fresh = {n: TimedLoss(methods[n]()) for n in pair}
            per: dict[str, list[float]] = {n: [] for n in pair}
            for rep in range(3):  # the first pass is warm-up
                for e, y in embs:
                    for n in pair:
                        before = fresh[n].seconds
                        fresh[n].grad(e, y)
                        if rep:
                            per[n].append(fresh[n].seconds - before)
            ratio = statistics.median(per[pair[1]]) / statistics.median(per[pair[0]])
            runs.append({"method": f"interleaved {pair[0]}", "seed": seed, "pml_over_ours": ratio})
            print(f"  seed {seed} interleaved pml/ours {pair[0][5:]}: {ratio:.2f}", flush=True)

    print(f"\nsummary over seeds {seeds} (mean ± std):")
    print(f"{'method':<24}{'P@1':>15}{'MAP@R':>15}{'loss ms/step':>14}")
    for name in methods:
        rs = [r for r in runs if r["method"] == name]
        p1 = [float(r["precision_at_1"]) for r in rs]
        mr = [float(r["map_at_r"]) for r in rs]
        ms = [float(r["loss_ms_per_step"]) for r in rs]
        print(
            f"{name:<24}{np.mean(p1):9.3f} ± {np.std(p1):.3f}{np.mean(mr):9.3f} ± {np.std(mr):.3f}"
            f"{np.mean(ms):14.2f}"
        )
    print(f"\n{'throughput pml / ours':<24}{'in-training':>14}{'interleaved':>14}")
    for case in ("triplet+semihard", "supcon"):
        ours = [r for r in runs if r["method"] == f"ours {case}"]
        pml = [r for r in runs if r["method"] == f"pml {case}"]
        inside = [
            float(b["loss_s_total"]) / float(a["loss_s_total"])
            for a, b in zip(ours, pml, strict=True)
        ]
        inter = [
            float(r["pml_over_ours"]) for r in runs if r["method"] == f"interleaved ours {case}"
        ]
        print(
            f"{case:<24}{np.mean(inside):8.2f} ± {np.std(inside):.2f}"
            f"{np.mean(inter):8.2f} ± {np.std(inter):.2f}"
        )
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
