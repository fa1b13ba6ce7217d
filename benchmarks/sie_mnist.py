"""SIE vs an invariant-only baseline (VICReg) on rotated MNIST (``mnist-rot``).

Both models: the same small ConvEncoder with ``--dim`` outputs, trained self-supervised on
two random rotations (within +-``--max-angle`` degrees) of the first ``--n-train`` mnist-t10k
images. SIE splits the output into ``dim - dim_eq`` invariant and ``dim_eq`` equivariant
coordinates (hypernetwork predictor of the rotation); the baseline has ``dim_eq = 0``.
Linear probes are fit on embeddings of one rotated view of the training images and scored on
``--n-test`` other images (fresh rotations):

- class accuracy (logistic regression) on the invariant part (SIE) / whole embedding (baseline);
- R² of (sin, cos) of the view's rotation angle (ridge regression) from the equivariant part
  (SIE), from the invariant part (SIE) and from the whole embedding (baseline).

Usage:
    python benchmarks/sie_mnist.py [--data ../shared/data/mnist-t10k] [--n-train 5000]
        [--n-test 2000] [--epochs 5] [--dim 40] [--dim-eq 8] [--max-angle 90] [--seeds 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from embedlab.data.mnist import load_mnist
from embedlab.data.rotated_views import rotated_views
from embedlab.training.sie import fit_sie, sie_embed


def class_acc(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray) -> float:
    sc = StandardScaler().fit(xtr)
    clf = LogisticRegression(max_iter=2000).fit(sc.transform(xtr), ytr)
    return float((clf.predict(sc.transform(xte)) == yte).mean())


def angle_r2(xtr: np.ndarray, atr: np.ndarray, xte: np.ndarray, ate: np.ndarray) -> float:
    def target(a: np.ndarray) -> np.ndarray:
        return np.stack([np.sin(a), np.cos(a)], axis=1)

    sc = StandardScaler().fit(xtr)
    reg = Ridge(alpha=1.0).fit(sc.transform(xtr), target(atr))
    return float(r2_score(target(ate), reg.predict(sc.transform(xte))))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default="../shared/data/mnist-t10k")
    p.add_argument("--n-train", type=int, default=5000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--dim", type=int, default=40)
    p.add_argument("--dim-eq", type=int, default=8)
    p.add_argument("--max-angle", type=float, default=90.0)
    p.add_argument("--seeds", default="0")
    args = p.parse_args()
    torch.set_num_threads(1)
    data = load_mnist(args.data)
    ntr, nte = args.n_train, args.n_test
    for seed in (int(s) for s in args.seeds.split(",")):
        train = rotated_views(data.x[:ntr], data.y[:ntr], max_angle=args.max_angle, seed=seed)
        test = rotated_views(
            data.x[ntr : ntr + nte],
            data.y[ntr : ntr + nte],
            max_angle=args.max_angle,
            seed=seed + 1000,
        )
        ytr, yte = train.labels.numpy(), test.labels.numpy()
        atr, ate = train.angle1.numpy(), test.angle1.numpy()
        for name, d_eq in (("invariant-only", 0), ("SIE", args.dim_eq)):
            t0 = time.perf_counter()
            res = fit_sie(
                train, dim_inv=args.dim - d_eq, dim_eq=d_eq, epochs=args.epochs, seed=seed
            )
            secs = time.perf_counter() - t0
            itr, etr = sie_embed(res, train.view1)
            ite, ete = sie_embed(res, test.view1)
            acc = class_acc(itr, ytr, ite, yte)
            r2_inv = angle_r2(itr, atr, ite, ate)
            line = (
                f"seed={seed} {name:15s} train {secs:6.1f}s  final loss "
                f"{res.history[-1]['total']:.3f}  class acc (inv part) {acc:.3f}  "
                f"angle R2 from inv part {r2_inv:+.3f}"
            )
            if d_eq:
                r2_eq = angle_r2(etr, atr, ete, ate)
                acc_eq = class_acc(etr, ytr, ete, yte)
                line += f"  angle R2 from eq part {r2_eq:+.3f}  class acc (eq part) {acc_eq:.3f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
