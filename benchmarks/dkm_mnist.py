"""Deep kernel machines vs the NNGP on 1,000 mnist-t10k images; sparse-DKM time vs N.

Part 1 (accuracy): ``--n-train`` images (default 1,000) drawn with the seed, a disjoint
``--n-test`` set; rows scaled to unit norm so the input Gram has unit diagonal. Methods:
exact NNGP (``nu -> inf``, ``O(N^3)``), sparse NNGP (inducing points, ``nu = inf``) and sparse
DKMs for each ``--nus``; all depth ``--layers``, GP regression to centred one-hot labels
(noise ``--noise``). Prints test accuracy and the mean Gaussian predictive log density of the
one-hot targets (``lpd``, nats per image; not a categorical log-likelihood).

Part 2 (scaling): the sparse DKM for N in ``--sizes`` (default 250 ... 8000), fixed
``--inducing`` and ``--time-steps`` L-BFGS iterations; seconds per objective+gradient
evaluation, and the log-log slope (1 = linear in N, the paper's claim); the exact NNGP's
fit time beside it (up to ``--nngp-max`` points).

Falls back to scikit-learn's 8x8 digits (1,797 images) when the mnist folder is absent.

Usage:
    python benchmarks/dkm_mnist.py [--data ../shared/data/mnist-t10k] [--seed 0]
        [--nus 1,10,100] [--inducing 100] [--steps 100] [--sizes 250,500,1000,2000,4000,8000]
        [--json OUT.jsonl] [--plot OUT.png]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from embedlab.data.mnist import load_digits, load_mnist
from embedlab.kernels import NNGPClassifier, SparseDKMClassifier


def load(path: str) -> tuple[np.ndarray, np.ndarray, str]:
    data = load_mnist(path) if Path(path).is_dir() else load_digits()
    x = data.x.reshape(len(data.x), -1).astype(np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True) * math.sqrt(x.shape[1])  # G0 diag = 1
    return x, data.y, data.name


def fit_eval(
    name: str, model: Any, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray
) -> dict[str, Any]:
    start = time.perf_counter()
    model.fit(xtr, ytr)
    fit_s = time.perf_counter() - start
    row: dict[str, Any] = {
        "part": "accuracy",
        "method": name,
        "n_train": len(xtr),
        "test_acc": round(float((model.predict(xte) == yte).mean()), 4),
        "test_lpd": round(model.log_density(xte, yte), 4),
        "train_acc": round(float((model.predict(xtr) == ytr).mean()), 4),
        "fit_s": round(fit_s, 2),
    }
    if isinstance(model, SparseDKMClassifier):
        row["objective"] = round(model.objective(), 2)
        row["evaluations"] = len(model.history_)
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/mnist-t10k")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--nus", default="1,10,100")
    ap.add_argument("--inducing", type=int, default=100)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--sizes", default="250,500,1000,2000,4000,8000")
    ap.add_argument("--nngp-max", type=int, default=4000, help="largest N for the exact NNGP")
    ap.add_argument("--time-steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--parts", default="accuracy,scaling", help="accuracy, scaling or both")
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, y, name = load(args.data)
    perm = np.random.default_rng(args.seed).permutation(len(x))
    n_test = min(args.n_test, len(x) - args.n_train)
    tr, te = perm[: args.n_train], perm[args.n_train : args.n_train + n_test]
    print(f"# {name}: {len(tr)} train, {len(te)} test, {x.shape[1]}-d", flush=True)
    rows: list[dict[str, Any]] = []
    parts = args.parts.split(",")
    common = {"n_layers": args.layers, "noise": args.noise}
    sparse = {**common, "n_inducing": args.inducing, "steps": args.steps, "seed": args.seed}
    if "accuracy" in parts:
        rows.append(fit_eval("nngp", NNGPClassifier(**common), x[tr], y[tr], x[te], y[te]))
        for nu in [math.inf, *(float(v) for v in args.nus.split(","))]:
            label = "sparse-nngp" if math.isinf(nu) else f"sparse-dkm(nu={nu:g})"
            model = SparseDKMClassifier(nu=nu, **sparse)  # type: ignore[arg-type]
            rows.append(fit_eval(label, model, x[tr], y[tr], x[te], y[te]))
    if "scaling" in parts:
        scaling(args, x, y, perm, sparse, common, rows)

    if args.json:
        with open(args.json, "a") as fh:
            for r in rows:
                fh.write(json.dumps({**r, "dataset": name, "seed": args.seed}) + "\n")
    if args.plot:
        plot(rows, args.plot, name)


def scaling(
    args: argparse.Namespace,
    x: np.ndarray,
    y: np.ndarray,
    perm: np.ndarray,
    sparse: dict[str, Any],
    common: dict[str, Any],
    rows: list[dict[str, Any]],
) -> None:
    """Seconds per sparse-DKM objective evaluation (and exact NNGP fit) for each N."""
    nu_t = float(args.nus.split(",")[0])
    # warm-up: the first L-BFGS step pays one-time imports, keep them out of the timings
    SparseDKMClassifier(nu=nu_t, **{**sparse, "steps": 1}).fit(x[perm[:200]], y[perm[:200]])  # type: ignore[arg-type]
    for n in (int(s) for s in args.sizes.split(",")):
        if n > len(x):
            print(f"# skip N={n}: only {len(x)} images", flush=True)
            continue
        idx = perm[:n]
        model = SparseDKMClassifier(nu=nu_t, **{**sparse, "steps": args.time_steps})  # type: ignore[arg-type]
        start = time.perf_counter()
        model.fit(x[idx], y[idx])
        dkm_s = time.perf_counter() - start
        nngp_s: float | None = None
        if n <= args.nngp_max:
            start = time.perf_counter()
            NNGPClassifier(**common).fit(x[idx], y[idx])  # type: ignore[arg-type]
            nngp_s = time.perf_counter() - start
        row = {
            "part": "scaling", "n_train": n, "inducing": args.inducing,
            "dkm_evaluations": len(model.history_),
            "dkm_s_per_eval": round(dkm_s / len(model.history_), 5),
            "nngp_fit_s": None if nngp_s is None else round(nngp_s, 4),
        }  # fmt: skip
        print(json.dumps(row), flush=True)
        rows.append(row)
    scal = [r for r in rows if r["part"] == "scaling"]
    if len(scal) >= 2:
        ns = np.log([r["n_train"] for r in scal])
        slope = np.polyfit(ns, np.log([r["dkm_s_per_eval"] for r in scal]), 1)[0]
        big = [r for r in scal if r["n_train"] >= 1000]
        slope_big = (
            np.polyfit(
                np.log([r["n_train"] for r in big]), np.log([r["dkm_s_per_eval"] for r in big]), 1
            )[0]
            if len(big) >= 2
            else math.nan
        )
        exact = [r for r in scal if r["nngp_fit_s"] is not None]
        slope_nngp = np.polyfit(
            np.log([r["n_train"] for r in exact]), np.log([r["nngp_fit_s"] for r in exact]), 1
        )[0]
        print(
            f"# log-log slope of time vs N: sparse DKM {slope:.2f} (N >= 1000: {slope_big:.2f}),"
            f" exact NNGP {slope_nngp:.2f}"
        )


def plot(rows: list[dict[str, Any]], path: str, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = [r for r in rows if r["part"] == "accuracy"]
    scal = [r for r in rows if r["part"] == "scaling"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    if acc:
        labels = [r["method"] for r in acc]
        axes[0].barh(labels, [r["test_acc"] for r in acc])
        axes[0].set_xlabel("test accuracy")
        axes[0].set_xlim(min(r["test_acc"] for r in acc) - 0.05, 1.0)
        axes[1].barh(labels, [r["test_lpd"] for r in acc])
        axes[1].set_xlabel("test log density (nats / image)")
        axes[1].set_yticklabels([])
    if scal:
        ns = [r["n_train"] for r in scal]
        axes[2].loglog(ns, [r["dkm_s_per_eval"] for r in scal], "o-", label="sparse DKM / eval")
        exact = [r for r in scal if r["nngp_fit_s"] is not None]
        axes[2].loglog(
            [r["n_train"] for r in exact], [r["nngp_fit_s"] for r in exact], "s-",
            label="exact NNGP fit",
        )  # fmt: skip
        axes[2].set_xlabel("N (training points)")
        axes[2].set_ylabel("seconds")
        axes[2].legend()
    fig.suptitle(f"DKM vs NNGP on {name}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"# wrote {path}")


if __name__ == "__main__":
    main()
