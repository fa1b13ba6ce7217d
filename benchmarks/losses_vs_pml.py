"""Loss + miner throughput of embedlab against pytorch-metric-learning (PML).

Measures forward + backward of
- ``TripletLoss(margin, miner=SemiHardMiner(margin))`` vs PML's
  ``TripletMarginLoss`` + ``TripletMarginMiner("semihard")`` (both on squared L2
  of normalised embeddings), and
- ``SupConLoss`` vs PML's ``SupConLoss`` (cosine, temperature 0.1),

on random embeddings with P x K labels. Runs alternate (ours, pml, ours, pml, ...)
so machine load hits both alike; each reported figure is the median over the
repeats, and the ratio is ``pml_time / our_time`` (> 1: ours is faster).

Usage:
    python benchmarks/losses_vs_pml.py --batches 256,1024 --dim 128 --repeats 15 [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from functools import partial

import torch

from embedlab.losses import SupConLoss, TripletLoss
from embedlab.miners import SemiHardMiner


def _time(fn: Callable[[], torch.Tensor], x: torch.Tensor) -> float:
    x.grad = None
    t0 = time.perf_counter()
    fn().backward()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="256,1024")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=32, help="classes per batch (P)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--margin", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    from pytorch_metric_learning import distances as pml_d
    from pytorch_metric_learning import losses as pml_l
    from pytorch_metric_learning import miners as pml_m

    if args.threads:
        torch.set_num_threads(args.threads)
    records = []
    for batch in (int(b) for b in args.batches.split(",")):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(batch, args.dim, generator=gen).requires_grad_(True)
        labels = torch.arange(batch) % args.classes
        ours_t = TripletLoss(margin=args.margin, miner=SemiHardMiner(margin=args.margin))
        sq = pml_d.LpDistance(power=2)
        pml_t = pml_l.TripletMarginLoss(margin=args.margin, distance=sq)
        pml_mn = pml_m.TripletMarginMiner(
            margin=args.margin, type_of_triplets="semihard", distance=sq
        )
        ours_s = SupConLoss(temperature=0.1)
        pml_s = pml_l.SupConLoss(temperature=0.1)
        cases: dict[str, tuple[Callable[[], torch.Tensor], Callable[[], torch.Tensor]]] = {
            "triplet+semihard": (
                partial(ours_t, x, labels),
                lambda x=x, y=labels, t=pml_t, m=pml_mn: t(x, y, m(x, y)),
            ),
            "supcon": (partial(ours_s, x, labels), partial(pml_s, x, labels)),
        }
        for name, (ours, pml) in cases.items():
            a, b = float(ours().detach()), float(pml().detach())
            for _ in range(2):  # warm-up
                _time(ours, x), _time(pml, x)
            t_ours, t_pml = [], []
            for _ in range(args.repeats):
                t_ours.append(_time(ours, x))
                t_pml.append(_time(pml, x))
            rec = {
                "case": name,
                "batch": batch,
                "dim": args.dim,
                "ours_ms": 1e3 * statistics.median(t_ours),
                "pml_ms": 1e3 * statistics.median(t_pml),
                "loss_ours": a,
                "loss_pml": b,
                "threads": torch.get_num_threads(),
            }
            rec["speedup"] = rec["pml_ms"] / rec["ours_ms"]
            records.append(rec)
            print(
                f"{name:18s} batch {batch:5d} x {args.dim}: ours {rec['ours_ms']:8.2f} ms  "
                f"pml {rec['pml_ms']:8.2f} ms  pml/ours {rec['speedup']:5.2f}  "
                f"(loss {a:.6f} vs {b:.6f})",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(records, fh, indent=1)


if __name__ == "__main__":
    main()
