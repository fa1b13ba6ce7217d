"""Black-box interpretation on mnist-t10k pixels: surrogate fidelity at k = 10/20/50 and rules.

The black box is an MLP (784 -> 128 -> 32-d embedding -> 10 classes) trained on 75% of the
10,000 test images; the pixels are ranked by the chosen importance method on (up to
``--max-eval``) held-out images; a depth-``--depth`` tree is fitted to the black box's
decisions on the top-k pixels. Fidelity = agreement with the black box on the held-out
25%; the random-k column is a tree on k random pixels, "all" a tree on all 784.

Usage:
    python benchmarks/explain_mnist.py [--data ../shared/data/mnist-t10k] [--method occlusion]
        [--ks 10,20,50] [--depth 8] [--seeds 0] [--max-eval 1000] [--out DIR]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from embedlab.analysis import explain_embedding
from embedlab.analysis._explain_io import write_explain_folder
from embedlab.data.mnist import load_mnist


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="../shared/data/mnist-t10k")
    p.add_argument("--method", default="occlusion")
    p.add_argument("--ks", default="10,20,50")
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--seeds", default="0")
    p.add_argument("--max-eval", type=int, default=1000)
    p.add_argument("--out", default=None, help="write summary.json + rules.txt of seed 0 here")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = load_mnist(args.data)
    x = data.x.reshape(len(data.x), -1).astype(np.float64)
    names = [f"px(r{j // 28},c{j % 28})" for j in range(784)]
    ks = [int(k) for k in args.ks.split(",")]
    print(f"{'seed':>4} {'k':>4} {'fidelity':>9} {'random-k':>9} {'acc':>6}")
    for seed in (int(s) for s in args.seeds.split(",")):
        t0 = time.perf_counter()
        res = explain_embedding(
            x,
            data.y,
            ks=ks,
            method=args.method,
            max_depth=args.depth,
            max_eval=args.max_eval,
            feature_names=names,
            seed=seed,
        )
        for k in res.ks:
            print(
                f"{seed:>4} {k:>4} {res.fidelity[k]:>9.3f} {res.fidelity_random[k]:>9.3f} "
                f"{res.surrogate_accuracy[k]:>6.3f}"
            )
        print(
            f"seed {seed}: black box accuracy {res.black_box_accuracy:.3f}, tree on all 784 "
            f"pixels fidelity {res.fidelity_all:.3f}, {time.perf_counter() - t0:.0f} s"
        )
        if seed == int(args.seeds.split(",")[0]):
            print(res.rules_text())
            if args.out:
                write_explain_folder(res, args.out, force=True)


if __name__ == "__main__":
    main()
