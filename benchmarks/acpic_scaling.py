"""AC-PIC's time and NMI against the number of samples on mnist-t10k (raw pixels, and
their 10-d PCA as a stand-in for a low-dimensional embedding), next to k-means and
spectral clustering of the same rows.

Usage:
    python benchmarks/acpic_scaling.py [--data ../shared/data/mnist-t10k] [--n 2500,5000,10000]
        [--features pixels,pca10] [--json OUT.jsonl]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from embedlab.cluster import make_clusterer
from embedlab.data.mnist import load_mnist
from embedlab.evaluate import cluster_scores


def features(kind: str, flat: np.ndarray) -> np.ndarray:
    if kind == "pixels":
        return flat
    from sklearn.decomposition import PCA

    dim = int(kind.removeprefix("pca"))
    return PCA(n_components=dim, random_state=0).fit_transform(flat).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/mnist-t10k")
    ap.add_argument("--n", default="2500,5000,10000")
    ap.add_argument("--features", default="pixels,pca10")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    data = load_mnist(args.data)
    flat = data.flat()
    rows = []
    for kind in args.features.split(","):
        x_all = features(kind, flat)
        for n in (int(v) for v in args.n.split(",")):
            x, y = x_all[:n], data.y[:n]
            for spec in ("kmeans", "spectral", "acpic"):
                start = time.perf_counter()
                labels = make_clusterer(spec, n_clusters=10, seed=0).fit_predict(x)
                row = {
                    "features": kind, "n": n, "method": spec, **cluster_scores(y, labels),
                    "fit_s": round(time.perf_counter() - start, 2),
                }  # fmt: skip
                print(json.dumps(row), flush=True)
                rows.append(row)
    if args.json:
        with open(args.json, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
