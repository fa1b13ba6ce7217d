"""Diffusion features on MNIST t10k: best (block, t) linear probe vs a same-size autoencoder.

"Diffusion Models Beat GANs on Image Classification": a DDPM's U-Net block outputs at a noise
step, pooled, are linear-probed. Here a ~106k-parameter U-Net (:class:`TinyUNet`, base 8) is
trained as a DDPM (T=1000, epsilon prediction) on a seeded 80% split of mnist-t10k, and the
same network with its skips zeroed is trained as an autoencoder for the same wall-clock
budget. Every block's output (adaptive average pooled to ``pool x pool``) is probed with a
standardised logistic regression (train split -> held-out 20%); the DDPM at every
``t in --steps``, the autoencoder (and an untrained network, and raw pixels) at its only step.

Usage:
    python benchmarks/diffusion_features_mnist.py [--data ../shared/data/mnist-t10k]
        [--seconds 120] [--probe-train 4000] [--pool 2] [--steps 10,50,100,250,500]
        [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seconds", type=float, default=120.0, help="training budget per model")
    parser.add_argument("--probe-train", type=int, default=4000, help="probe training images")
    parser.add_argument("--epochs", type=int, default=50, help="epoch cap (the budget binds first)")
    parser.add_argument("--pool", type=int, default=2)
    parser.add_argument("--steps", type=str, default="10,50,100,250,500")
    parser.add_argument("--schedule", choices=("linear", "cosine"), default="linear")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (MNIST t10k IDX files)")
        return 0

    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from embedlab.bench.metric import load_labeled
    from embedlab.training.diffusion import (
        BLOCKS,
        TinyUNet,
        make_schedule,
        probe_sweep,
        train_unet,
    )

    torch.set_num_threads(1)
    data = load_labeled(f"mnist:{args.data}")
    x = data.x.reshape(len(data.y), 784)
    test = np.random.default_rng(args.seed).random(len(data.y)) < 0.2
    x_tr, y_tr, x_te, y_te = x[~test], data.y[~test], x[test], data.y[test]
    x_pr, y_pr = x_tr[: args.probe_train], y_tr[: args.probe_train]
    steps = tuple(int(s) for s in args.steps.split(","))
    sched = make_schedule(1000, args.schedule)
    n_params = sum(p.numel() for p in TinyUNet(base=8).parameters())
    print(
        f"mnist t10k: {len(y_tr)} train (probe: first {len(y_pr)}) / {len(y_te)} test; "
        f"TinyUNet base 8 ({n_params} params); "
        f"{args.seconds:.0f} s training per model, 1 thread; {args.schedule} T=1000; "
        f"pool {args.pool}x{args.pool}; seed {args.seed}",
        flush=True,
    )
    out: dict[str, object] = {"n_params": n_params, "seconds": args.seconds, "pool": args.pool}
    models: dict[str, TinyUNet] = {}
    for objective in ("ddpm", "autoencoder"):
        start = time.perf_counter()
        model, hist = train_unet(
            x_tr,
            objective=objective,  # type: ignore[arg-type]
            schedule=sched,
            epochs=args.epochs,
            max_seconds=args.seconds,
            seed=args.seed,
        )
        took = time.perf_counter() - start
        print(
            f"{objective}: {len(hist)} epochs in {took:.0f} s, loss per epoch "
            + " ".join(f"{h:.4f}" for h in hist),
            flush=True,
        )
        out[f"{objective}_loss"] = hist
        models[objective] = model
    torch.manual_seed(args.seed)
    models["untrained"] = TinyUNet(base=8).eval()

    table: dict[str, list[dict[str, object]]] = {}
    for name, model in models.items():
        start = time.perf_counter()
        print(f"\n{name} probe: block  t  dim  accuracy", flush=True)
        res = []
        for t in steps if name == "ddpm" else (0,):
            part = probe_sweep(
                model,
                x_pr,
                y_pr,
                x_te,
                y_te,
                steps=(t,),
                schedule=sched,
                pool=args.pool,
                seed=args.seed,
                max_iter=300,
            )
            for r in sorted(part, key=lambda r: BLOCKS.index(r.block)):
                print(f"  {r.block:6s} {r.t:4d} {r.dim:4d}  {r.accuracy:.4f}", flush=True)
            res.extend(part)
        res.sort(key=lambda r: -r.accuracy)
        table[name] = [r.__dict__ for r in res]
        print(
            f"  best: {res[0].block} t={res[0].t} accuracy {res[0].accuracy:.4f} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    pixels = float(clf.fit(x_pr, y_pr).score(x_te, y_te))
    print(f"\nraw pixels (784 dims) linear probe: {pixels:.4f}")
    out["pixels"] = pixels
    out["probes"] = table
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
