"""aTLAS on a task family built from MNIST t10k: few-shot transfer to held-out tasks.

A small CNN (the "pre-trained" base) is trained on upright digits; it is fine-tuned once per
*source task* (an image transform: ``rot90``, ``hflip``, ``invert``), giving one task vector
each. On each *held-out task* (``rot180``, ``vflip``, ``rot90+invert`` by default) only
``--shots`` labelled images per class are given; methods compared on the transformed test
images (never used for any choice):

- ``base``: the base model, no adaptation;
- ``task arithmetic``: ``base + lam * sum tau``, lam in 0..2 (step 0.1) chosen by the loss
  on the shots;
- ``aTLAS (per task)``: one learned coefficient per task vector (isotropic);
- ``aTLAS (blockwise)``: one learned coefficient per task vector and parameter tensor;
- ``full FT on shots``: all weights of the base fine-tuned on the same shots;
- ``oracle FT (all data)``: fine-tuned on the whole transformed training split (upper bound);
- ``aTLAS (+ own vector)``: a sanity check of the optimiser, not a method: blockwise aTLAS
  on the shots with the oracle's own task vector added to the pool (should approach the
  oracle if learning the coefficients works).

Usage:
    python benchmarks/atlas_mnist.py [--data ../shared/data/mnist-t10k] [--shots 16]
        [--seeds 0,1,2] [--held-out rot180,vflip,rot90+invert]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sources", default="rot90,hflip,invert")
    parser.add_argument("--held-out", default="rot180,vflip,rot90+invert")
    parser.add_argument("--base-epochs", type=int, default=3)
    parser.add_argument("--ft-epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200, help="aTLAS / few-shot FT steps")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (MNIST t10k IDX files)")
        return 0

    import torch
    import torch.nn.functional as F
    from torch import nn

    from embedlab.data import load_mnist
    from embedlab.training.task_vectors import (
        atlas,
        few_shot_subset,
        task_arithmetic,
        task_vector,
    )

    torch.set_num_threads(1)
    transforms: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "rot90": lambda x: torch.rot90(x, 1, (2, 3)),
        "rot180": lambda x: torch.rot90(x, 2, (2, 3)),
        "rot270": lambda x: torch.rot90(x, 3, (2, 3)),
        "hflip": lambda x: torch.flip(x, (3,)),
        "vflip": lambda x: torch.flip(x, (2,)),
        "invert": lambda x: 1.0 - x,
    }

    def transform(name: str, x: torch.Tensor) -> torch.Tensor:
        for part in name.split("+"):
            x = transforms[part](x)
        return x

    data = load_mnist(args.data)
    x_all = torch.as_tensor(data.x)
    y_all = torch.as_tensor(data.y)

    def make_cnn() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )

    def train(
        model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, seed: int
    ) -> None:
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        model.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=gen).split(64):
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()

    def full_batch_ft(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(steps):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

    @torch.no_grad()
    def acc(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        model.eval()
        return float((model(x).argmax(1) == y).float().mean())

    def with_state(state: dict[str, torch.Tensor]) -> nn.Module:
        m = make_cnn()
        m.load_state_dict(state)
        return m

    sources = args.sources.split(",")
    held = args.held_out.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [
        "base",
        "task arithmetic",
        "aTLAS (per task)",
        "aTLAS (blockwise)",
        "full FT on shots",
        "oracle FT (all data)",
        "aTLAS (+ own vector)",
    ]
    results: dict[str, dict[str, list[float]]] = {h: {m: [] for m in methods} for h in held}
    lams: dict[str, list[float]] = {h: [] for h in held}
    start = time.perf_counter()
    for seed in seeds:
        perm = torch.as_tensor(np.random.default_rng(seed).permutation(len(x_all)))
        tr, te = perm[:8000], perm[8000:]
        xtr, ytr, xte, yte = x_all[tr], y_all[tr], x_all[te], y_all[te]
        torch.manual_seed(seed)
        base = make_cnn()
        train(base, xtr, ytr, args.base_epochs, 1e-3, seed)
        vectors = []
        line = [f"seed {seed}: base upright test {acc(base, xte, yte):.4f}"]
        for i, s in enumerate(sources):
            ft = copy.deepcopy(base)
            train(ft, transform(s, xtr), ytr, args.ft_epochs, 1e-3, seed + 10 + i)
            vectors.append(task_vector(base, ft))
            line.append(f"ft {s} {acc(ft, transform(s, xte), yte):.4f}")
        print("; ".join(line), flush=True)
        for h in held:
            hx_tr, hx_te = transform(h, xtr), transform(h, xte)
            sx, sy = few_shot_subset(hx_tr, ytr, args.shots, seed=seed)
            r = results[h]
            r["base"].append(acc(base, hx_te, yte))
            best: tuple[float, float] | None = None
            for lam in np.round(np.arange(0.0, 2.01, 0.1), 2):
                m = with_state(task_arithmetic(base, vectors, float(lam)))
                with torch.no_grad():
                    m.eval()
                    loss = float(F.cross_entropy(m(sx), sy))
                if best is None or loss < best[0]:
                    best = (loss, float(lam))
            assert best is not None
            lams[h].append(best[1])
            r["task arithmetic"].append(
                acc(with_state(task_arithmetic(base, vectors, best[1])), hx_te, yte)
            )
            for name, blockwise in (("aTLAS (per task)", False), ("aTLAS (blockwise)", True)):
                res = atlas(
                    base,
                    vectors,
                    (sx, sy),
                    shots=None,
                    steps=args.steps,
                    lr=0.05,
                    blockwise=blockwise,
                    seed=seed,
                )
                r[name].append(acc(res.model, hx_te, yte))
            ft = copy.deepcopy(base)
            ft.train()
            full_batch_ft(ft, sx, sy, args.steps)
            r["full FT on shots"].append(acc(ft, hx_te, yte))
            oracle = copy.deepcopy(base)
            train(oracle, hx_tr, ytr, args.ft_epochs, 1e-3, seed + 99)
            r["oracle FT (all data)"].append(acc(oracle, hx_te, yte))
            res = atlas(
                base,
                [*vectors, task_vector(base, oracle)],
                (sx, sy),
                shots=None,
                steps=args.steps,
                lr=0.05,
                seed=seed,
            )
            r["aTLAS (+ own vector)"].append(acc(res.model, hx_te, yte))
            print(
                f"  {h:<14}"
                + "  ".join(f"{m}={r[m][-1]:.4f}" for m in methods)
                + f"  (lam {best[1]:g})",
                flush=True,
            )
    print(
        f"\nheld-out test accuracy, {args.shots} shots/class, sources {sources}, "
        f"mean ± std over seeds {seeds}"
    )
    print(f"{'method':<22}" + "".join(f"{h:>18}" for h in held))
    for m in methods:
        cells = []
        for h in held:
            v = np.array(results[h][m])
            cells.append(f"{v.mean():.4f} ± {v.std():.4f}")
        print(f"{m:<22}" + "".join(f"{c:>18}" for c in cells))
    print("task-arithmetic lam chosen: " + ", ".join(f"{h} {lams[h]}" for h in held))
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps({"results": results, "lams": lams}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
