"""The clustering suite: every clusterer on the same samples, scored by NMI, ARI and ACC."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from embedlab import __version__
from embedlab._registry import parse_spec
from embedlab._validation import check_int
from embedlab.bench._record import BenchRecord
from embedlab.data.labeled import LabeledData

__all__ = ["CLUSTER_METRICS", "load_cluster_data", "make_blobs", "run_cluster_bench"]

CLUSTER_METRICS = ("nmi", "ari", "acc")


def make_blobs(
    *, n_samples: int = 600, n_clusters: int = 10, dim: int = 16, seed: int = 0
) -> LabeledData:
    """Gaussian blobs (unit variance, centres drawn in a box of side 20), seeded: a
    synthetic data set every clusterer should solve (NMI near 1)."""
    from sklearn.datasets import make_blobs as sk_blobs

    check_int("n_samples", n_samples, min_value=2)
    x, y = sk_blobs(
        n_samples=n_samples,
        centers=check_int("n_clusters", n_clusters, min_value=2),
        n_features=check_int("dim", dim, min_value=1),
        cluster_std=1.0,
        center_box=(-10.0, 10.0),
        random_state=seed,
    )
    return LabeledData(x.astype(np.float32), y.astype(np.int64), name="blobs")


def load_cluster_data(spec: str) -> LabeledData:
    """``"blobs"`` (synthetic, :func:`make_blobs`), ``"digits"`` or ``"mnist:PATH"``."""
    from embedlab.bench.metric import load_labeled

    if spec == "blobs":
        return make_blobs()
    if spec.startswith("blobs"):
        raise ValueError(f"data 'blobs' takes no path, got {spec!r}")
    return load_labeled(spec)


def run_cluster_bench(
    data: LabeledData,
    *,
    methods: Sequence[str],
    seeds: Sequence[int] = (0,),
    n_clusters: int | None = None,
    progress: bool = False,
    on_record: Callable[[BenchRecord], None] | None = None,
) -> list[BenchRecord]:
    """Cluster ``data.x`` with each method spec and seed; score against ``data.y``.

    Args:
        data: samples ``(n, ...)`` with their true classes (used for scoring only).
        methods: clusterer specs (``"kmeans"``, ``"depict(epochs=20)"``); an unknown name
            fails before any run with the registry's list.
        seeds: one run per (method, seed).
        n_clusters: default the number of classes in ``data.y``.
        progress: progress bars of the methods that train.
        on_record: called with each record as soon as it is measured.

    Returns:
        Records of suite ``"cluster"``: metrics ``nmi`` (first, the report's primary),
        ``ari``, ``acc``; timing ``fit_s``; params the method's hyper-parameters, ``n``
        and ``n_clusters``. A method that fails gets ``status="failed"`` and the error.

    Example:
        >>> from embedlab.bench.cluster import make_blobs, run_cluster_bench
        >>> rec = run_cluster_bench(make_blobs(n_samples=100, n_clusters=3), methods=["kmeans"])
        >>> rec[0].suite, rec[0].metrics["nmi"]
        ('cluster', 1.0)
    """
    from embedlab.cluster import CLUSTERERS, make_clusterer
    from embedlab.evaluate import cluster_scores

    if not methods:
        raise ValueError("methods must not be empty")
    if not seeds:
        raise ValueError("seeds must not be empty")
    for s in seeds:
        check_int("seed", s, min_value=0)
    for spec in methods:
        CLUSTERERS.get(parse_spec(spec)[0])
    k = int(np.unique(data.y).size) if n_clusters is None else n_clusters
    check_int("n_clusters", k, min_value=2)
    records: list[BenchRecord] = []
    for seed in seeds:
        for spec in methods:
            clusterer = make_clusterer(spec, n_clusters=k, seed=seed)
            if hasattr(clusterer, "progress"):
                clusterer.progress = progress
            params = {**clusterer.hyper_parameters(), "n": len(data), "spec": spec}
            record = BenchRecord(
                suite="cluster",
                dataset=data.name,
                method=spec,
                params=params,
                seed=seed,
                embedlab_version=__version__,
            )
            start = time.perf_counter()
            try:
                labels = clusterer.fit_predict(data.x)
            except (ValueError, RuntimeError) as exc:
                record.status, record.error = "failed", str(exc)
            else:
                scores = cluster_scores(data.y, labels)
                record.metrics = {key: scores[key] for key in CLUSTER_METRICS}
                record.timing = {"fit_s": time.perf_counter() - start}
            records.append(record)
            if on_record is not None:
                on_record(record)
    return records
