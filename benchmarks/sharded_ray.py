"""ShardedIndex on a local Ray cluster vs one unsharded index of the same spec.

Reports: identical results (fraction of equal ids), build time with 1 process vs
``--shards`` Ray actors (training happens once, on the driver, in both), search QPS, and
the merge overhead per query (the exact top-k merge of the shards' lists).

Usage:
    python benchmarks/sharded_ray.py [--n 400000] [--dim 128] [--spec IVF1024,PQ16] [--shards 2]
"""

from __future__ import annotations

import argparse
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--spec", default="IVF1024,PQ16")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--nprobe", type=int, default=16)
    args = parser.parse_args()

    import numpy as np
    import ray

    from embedlab.data.synthetic_vectors import SyntheticVectors
    from embedlab.index import ShardedIndex, index_factory
    from embedlab.index.sharded import merge_shard_results

    gen = SyntheticVectors(args.n, args.dim, clusters=500)
    x = np.concatenate(list(gen.chunks(args.n, stream=0)))
    q = np.concatenate(list(gen.chunks(args.queries, stream=1)))
    params = {"nprobe": args.nprobe} if args.spec.startswith("IVF") else {}
    print(f"{args.n} x {args.dim}, spec {args.spec}, {args.shards} shards, {args.queries} queries")

    one = index_factory(args.dim, args.spec, metric="cos")
    one.train(x[:100_000])
    t0 = time.perf_counter()
    one.add_batches(np.array_split(x, 20))
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, i_one = one.search(q, 10, **params)
    qps_one = args.queries / (time.perf_counter() - t0)

    ray.init(num_cpus=args.shards, include_dashboard=False, log_to_driver=False)
    sharded = ShardedIndex(args.dim, spec=args.spec, shards=args.shards, backend="ray")
    sharded.train(x[:100_000])
    t0 = time.perf_counter()
    sharded.add_batches(np.array_split(x, 20))
    t_ray = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, i_ray = sharded.search(q, 10, **params)
    qps_ray = args.queries / (time.perf_counter() - t0)
    results = sharded._ray.search(q, 10, params)  # type: ignore[union-attr]
    t0 = time.perf_counter()
    for _ in range(5):
        merge_shard_results(results, 10)
    merge_us = (time.perf_counter() - t0) / 5 / args.queries * 1e6
    sharded.close()
    ray.shutdown()

    print(f"identical ids: {(i_one == i_ray).mean():.4f}")
    print(
        f"build (add): 1 process {t_one:.1f} s, Ray {args.shards} actors {t_ray:.1f} s, "
        f"speed-up {t_one / t_ray:.2f}x"
    )
    print(
        f"search QPS: unsharded {qps_one:.0f}, Ray sharded {qps_ray:.0f}; "
        f"merge {merge_us:.2f} us/query"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
