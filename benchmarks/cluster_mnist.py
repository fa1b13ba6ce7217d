"""DEPICT, k-means, spectral clustering and MLC on mnist-t10k: raw pixels and DEPICT features.

For each seed: DEPICT on the 10,000 images (NMI / ARI / ACC of its own labels), then
k-means, spectral clustering and MLC on (a) the raw pixels (flattened, 784-d) and (b) the
clean encoder features of that DEPICT model (``transform``, ``dim``-d); and, for MLC, the
per-cluster effective rank and mean principal angle between the cluster subspaces of
the features, before (input) and after (MLC's features), by the true classes.

Usage:
    python benchmarks/cluster_mnist.py [--data ../shared/data/mnist-t10k] [--seeds 0]
        [--depict "depict"] [--mlc "mlc"] [--skip-raw-mlc] [--depict-only] [--threads N]
        [--json OUT.jsonl]

``--depict-only`` stops after DEPICT's row, which also gives the start clustering's NMI /
ACC (``start_nmi``, ``start_acc``) and the epochs each phase ran.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from embedlab.cluster import make_clusterer
from embedlab.data.mnist import load_mnist
from embedlab.evaluate import cluster_scores


def subspace_stats(x: np.ndarray, labels: np.ndarray, energy: float = 0.9) -> dict[str, float]:
    """Mean effective rank (components for ``energy`` of the variance) of each class's
    features and the mean principal angle (degrees) between the class subspaces."""
    bases, ranks = [], []
    for c in np.unique(labels):
        xc = x[labels == c] - x[labels == c].mean(0)
        _, s, vt = np.linalg.svd(xc, full_matrices=False)
        share = np.cumsum(s**2) / (s**2).sum()
        r = int(np.searchsorted(share, energy) + 1)
        ranks.append(r)
        bases.append(vt[:r].T)
    angles = []
    for i in range(len(bases)):
        for j in range(i + 1, len(bases)):
            cos = np.linalg.svd(bases[i].T @ bases[j], compute_uv=False).clip(-1, 1)
            angles.append(float(np.degrees(np.arccos(cos)).mean()))
    return {"eff_rank": float(np.mean(ranks)), "angle_deg": float(np.mean(angles))}


def run(spec: str, x: np.ndarray, y: np.ndarray, seed: int, features: str) -> dict[str, object]:
    start = time.perf_counter()
    model = make_clusterer(spec, n_clusters=10, seed=seed)
    labels = model.fit_predict(x)
    row: dict[str, object] = {
        "method": spec, "features": features, "seed": seed,
        **cluster_scores(y, labels), "fit_s": round(time.perf_counter() - start, 1),
    }  # fmt: skip
    if spec.startswith("mlc"):
        flat = x.reshape(len(x), -1)
        row["before"] = subspace_stats(flat, y)
        row["after"] = subspace_stats(model.transform(x), y)  # type: ignore[attr-defined]
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/mnist-t10k")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--depict", default="depict")
    ap.add_argument("--mlc", default="mlc")
    ap.add_argument("--skip-raw-mlc", action="store_true")
    ap.add_argument("--depict-only", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data = load_mnist(args.data)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        start = time.perf_counter()
        depict = make_clusterer(args.depict, n_clusters=10, seed=seed, progress=True)
        labels = depict.fit_predict(data.x)
        scores = cluster_scores(data.y, labels)
        fit_s = round(time.perf_counter() - start, 1)
        row = {"method": args.depict, "features": "pixels", "seed": seed, **scores, "fit_s": fit_s}
        start_labels = getattr(depict, "start_labels_", None)
        if start_labels is not None:
            start_scores = cluster_scores(data.y, start_labels)
            row |= {"start_nmi": start_scores["nmi"], "start_acc": start_scores["acc"]}
            history = getattr(depict, "history_", {})
            row["epochs_run"] = {k: len(v) for k, v in history.items()}
        print(json.dumps(row), flush=True)
        rows.append(row)
        if args.depict_only:
            continue
        feats = depict.transform(data.x)  # type: ignore[attr-defined]
        for features, x in (("depict", feats), ("pixels", data.flat())):
            for spec in ("kmeans", "spectral", "acpic", args.mlc):
                if spec == args.mlc and features == "pixels" and args.skip_raw_mlc:
                    continue
                rows.append(run(spec, x, data.y, seed, features))
    if args.json:
        with open(args.json, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
