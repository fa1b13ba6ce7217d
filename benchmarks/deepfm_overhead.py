"""Training-throughput overhead of embedlab's DeepFM + CTRTrainer against plain PyTorch.

Both sides train the same architecture (full float32 ``nn.Embedding`` table,
first-order read-out from the embeddings, FM term, MLP), with the same
hyper-parameters, batch size, epochs, seed, optimizer (Adam) and shuffling
(a seeded permutation per epoch over pre-converted tensors). The plain side is
a minimal hand-written loop with no validation, hooks or checks; embedlab's
validation passes are not counted in its training time (``train_seconds``).

A warm-up run of each side is excluded; the timed runs are interleaved
(plain, embedlab, plain, embedlab, ...) so both see the same machine load.
``ratio`` compares the best run of each side (like ``timeit``: load from other
processes only ever slows a run down, so the fastest run is the best estimate
of the uncontended speed); the ratio of medians and the median of the
per-pair ratios are reported too. The library's target is ratio >= 0.9.

Usage:
    python benchmarks/deepfm_overhead.py                      # synthetic data
    python benchmarks/deepfm_overhead.py --data frappe:/work/shared/data/frappe
    python benchmarks/deepfm_overhead.py --repeats 5 --json out.json   # "-" for stdout
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from embedlab.data import CTRSplits, make_ctr
from embedlab.models import make_model
from embedlab.tables import make_table
from embedlab.training import CTRTrainer


class PlainDeepFM(nn.Module):
    """DeepFM over one ``nn.Embedding``: ``b + sum_j <w_j, e_j> + FM(e) + MLP(e)``."""

    offsets: torch.Tensor

    def __init__(
        self, cardinalities: Sequence[int], dim: int, hidden: Sequence[int], dropout: float
    ) -> None:
        super().__init__()
        n_fields = len(cardinalities)
        offsets = torch.tensor([0, *cardinalities[:-1]], dtype=torch.int64).cumsum(0)
        self.register_buffer("offsets", offsets)
        self.embedding = nn.Embedding(sum(cardinalities), dim)
        nn.init.normal_(self.embedding.weight, 0.0, 1e-2)
        bound = dim**-0.5
        self.linear_weight = nn.Parameter(torch.empty(n_fields, dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(()))
        layers: list[nn.Module] = []
        width = n_fields * dim
        for units in hidden:
            layers += [nn.Linear(width, units), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = units
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        e = self.embedding(ids + self.offsets)  # (batch, n_fields, dim)
        first = (e * self.linear_weight).sum(dim=(1, 2)) + self.bias
        s = e.sum(dim=1)
        fm = 0.5 * (s * s - (e * e).sum(dim=1)).sum(dim=1)
        deep = self.mlp(e.flatten(start_dim=1)).squeeze(-1)
        out: torch.Tensor = first + fm + deep
        return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_plain(splits: CTRSplits, args: argparse.Namespace, epochs: int) -> float:
    """Train the plain model; return training samples per second."""
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    cards = [f.cardinality for f in splits.fields]
    model = PlainDeepFM(cards, args.dim, args.hidden, args.dropout).to(device)
    ids = torch.from_numpy(splits.train.ids).to(device)
    labels = torch.from_numpy(splits.train.labels).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    n, bs = ids.shape[0], args.batch_size
    model.train()
    _sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        x, y = ids[perm], labels[perm]
        for lo in range(0, n, bs):
            loss = nn.functional.binary_cross_entropy_with_logits(
                model(x[lo : lo + bs]), y[lo : lo + bs]
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    _sync(device)
    return n * epochs / (time.perf_counter() - start)


def run_embedlab(splits: CTRSplits, args: argparse.Namespace, epochs: int) -> tuple[float, float]:
    """Train embedlab's DeepFM with CTRTrainer; return (samples/s, best valid AUC)."""
    table = make_table("full", splits.fields, dim=args.dim, seed=args.seed)
    model = make_model("deepfm", table, hidden=args.hidden, dropout=args.dropout, seed=args.seed)
    trainer = CTRTrainer(
        epochs=epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=None,
        seed=args.seed,
        device=args.device,
        progress=False,
    )
    result = trainer.fit(model, splits.train, splits.valid)
    return result.samples_per_second, float(result.best_valid_auc or float("nan"))


def load_data(spec: str, n_samples: int, seed: int) -> CTRSplits:
    if spec == "synthetic":
        return make_ctr(n_samples, seed=seed).split(seed=seed)
    try:
        from embedlab.data import load_ctr
    except ImportError:
        sys.exit(f"--data {spec!r} needs embedlab.data.load_ctr, which this checkout lacks")
    splits: CTRSplits = load_ctr(spec, seed=seed)
    return splits


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--data", default="synthetic", help="synthetic or frappe:PATH (any load_ctr spec)"
    )
    p.add_argument("--n-samples", type=int, default=100_000, help="rows of synthetic data")
    p.add_argument("--dim", type=int, default=10)
    p.add_argument("--hidden", default="400-400-400")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--batch-size", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=1, help="epochs per timed run")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each side")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--json", default=None, help="write the result as JSON here ('-': stdout)")
    args = p.parse_args(argv)
    args.hidden = tuple(int(h) for h in args.hidden.split("-") if h)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    splits = load_data(args.data, args.n_samples, args.seed)
    # warm-up (allocator, kernels, lazy imports), excluded
    run_plain(splits, args, epochs=1)
    run_embedlab(splits, args, epochs=1)
    plain: list[float] = []
    ours: list[float] = []
    aucs: list[float] = []
    for _ in range(args.repeats):
        plain.append(run_plain(splits, args, args.epochs))
        sps, auc = run_embedlab(splits, args, args.epochs)
        ours.append(sps)
        aucs.append(auc)
    ratio = max(ours) / max(plain)
    result: dict[str, Any] = {
        "benchmark": "deepfm_overhead",
        "data": args.data,
        "n_train": len(splits.train),
        "n_fields": len(splits.fields),
        "dim": args.dim,
        "hidden": list(args.hidden),
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "device": args.device,
        "threads": torch.get_num_threads(),
        "plain_samples_per_s": plain,
        "embedlab_samples_per_s": ours,
        "plain_median": statistics.median(plain),
        "embedlab_median": statistics.median(ours),
        "ratio": ratio,
        "ratio_of_medians": statistics.median(ours) / statistics.median(plain),
        "pairwise_ratio_median": statistics.median(o / p for o, p in zip(ours, plain, strict=True)),
        "embedlab_valid_auc": aucs,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if args.json:
        text = json.dumps(result, indent=2)
        if args.json == "-":
            sys.stdout.write(text + "\n")
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
    if args.json != "-":
        print(
            f"{args.data}: best of {args.repeats}: plain {max(plain):,.0f} samples/s, "
            f"embedlab {max(ours):,.0f} samples/s, ratio embedlab/plain = {ratio:.3f} "
            f"(target >= 0.9); ratio of medians {result['ratio_of_medians']:.3f}, "
            f"median pairwise ratio {result['pairwise_ratio_median']:.3f}"
        )
    return result


if __name__ == "__main__":
    main()
