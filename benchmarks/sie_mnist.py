"""SIE vs an invariant-only baseline (VICReg) on rotated MNIST (``mnist-rot``).

Both models: the same small ConvEncoder with ``--dim`` outputs, trained self-supervised on
two random rotations (within +-``--max-angle`` degrees) of the first ``--n-train`` mnist-t10k
images. SIE splits the output into ``dim - dim_eq`` invariant and ``dim_eq`` equivariant
coordinates (hypernetwork predictor of the rotation); the baseline has ``dim_eq = 0``.
Linear probes are fit on embeddings of one rotated view of the training images and scored on
``--n-test`` other images (fresh rotations):

- class accuracy (logistic regression) on the invariant part (SIE) / whole embedding (baseline);
- R² of (sin, cos) of the RELATIVE rotation ``angle2 - angle1`` predicted from the pair of
  embeddings of the two views by a small MLP (as the SIE paper's evaluation): from the
  equivariant part (SIE), the invariant part (SIE) and the whole embedding (baseline);
- R² of (sin, cos) of one view's ABSOLUTE angle (ridge regression, linear) from the same parts.

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
from sklearn.neural_network import MLPRegressor
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


def pair_r2(
    tr: tuple[np.ndarray, np.ndarray],
    rtr: np.ndarray,
    te: tuple[np.ndarray, np.ndarray],
    rte: np.ndarray,
) -> float:
    """R² of (sin, cos) of the relative angle from [z(view1), z(view2)] by an MLP."""

    def target(a: np.ndarray) -> np.ndarray:
        return np.stack([np.sin(a), np.cos(a)], axis=1)

    xtr, xte = np.concatenate(tr, axis=1), np.concatenate(te, axis=1)
    sc = StandardScaler().fit(xtr)
    mlp = MLPRegressor(
        hidden_layer_sizes=(128, 128), max_iter=300, early_stopping=True, random_state=0
    )
    mlp.fit(sc.transform(xtr), target(rtr))
    return float(r2_score(target(rte), mlp.predict(sc.transform(xte))))


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
        rtr, rte = train.relative_angle.numpy(), test.relative_angle.numpy()
        for name, d_eq in (("invariant-only", 0), ("SIE", args.dim_eq)):
            t0 = time.perf_counter()
            res = fit_sie(
                train, dim_inv=args.dim - d_eq, dim_eq=d_eq, epochs=args.epochs, seed=seed
            )
            secs = time.perf_counter() - t0
            itr, etr = sie_embed(res, train.view1)
            ite, ete = sie_embed(res, test.view1)
            itr2, etr2 = sie_embed(res, train.view2)
            ite2, ete2 = sie_embed(res, test.view2)
            acc = class_acc(itr, ytr, ite, yte)
            rel_inv = pair_r2((itr, itr2), rtr, (ite, ite2), rte)
            abs_inv = angle_r2(itr, atr, ite, ate)
            print(
                f"seed={seed} {name}: train {secs:.1f}s, final loss {res.history[-1]['total']:.3f}"
                f"\n  inv part ({args.dim - d_eq}d): class acc {acc:.3f}, relative-angle R2 "
                f"(MLP on pair) {rel_inv:+.3f}, absolute-angle R2 (linear) {abs_inv:+.3f}",
                flush=True,
            )
            if d_eq:
                acc_eq = class_acc(etr, ytr, ete, yte)
                rel_eq = pair_r2((etr, etr2), rtr, (ete, ete2), rte)
                abs_eq = angle_r2(etr, atr, ete, ate)
                print(
                    f"  eq part ({d_eq}d): class acc {acc_eq:.3f}, relative-angle R2 (MLP on "
                    f"pair) {rel_eq:+.3f}, absolute-angle R2 (linear) {abs_eq:+.3f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
