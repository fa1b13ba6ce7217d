"""IVF search spreads whole query blocks over the threads: same results as one thread."""

from __future__ import annotations

from typing import Any

import numba  # type: ignore[import-untyped]
import numpy as np
import pytest

from embedlab.index import index_factory
from embedlab.index._topk import run_blocks


@pytest.mark.parametrize("spec", ["IVF16,Binary", "IVF16,Flat"])
def test_blocks_in_threads_equal_one_thread(spec: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 32)).astype(np.float32)
    q = rng.standard_normal((700, 32)).astype(np.float32)  # 3 blocks of <= 256 queries
    index = index_factory(32, spec, metric="cos")
    index.train(x)
    index.add(x)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        s1, i1 = index.search(q, 10, nprobe=4)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        s2, i2 = index.search(q, 10, nprobe=4)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(s1, s2)
    if spec.endswith("Flat"):  # every list probed: the exact ranking
        exact = index_factory(32, "Flat", metric="cos")
        exact.add(x)
        np.testing.assert_array_equal(index.search(q, 10, nprobe=16)[1], exact.search(q, 10)[1])


def test_run_blocks_runs_every_block_once() -> None:
    seen: list[int] = []
    run_blocks(seen.append, 7)
    assert sorted(seen) == list(range(7))


def _numpy_blas_threads(threadpoolctl: Any) -> list[int]:
    """Threads of the BLAS numpy links (OpenMP builds such as faiss' report per thread)."""
    infos = threadpoolctl.threadpool_info()
    return [i["num_threads"] for i in infos if i["user_api"] == "blas" and "numpy" in i["filepath"]]


def test_run_blocks_holds_blas_at_one_thread_on_the_block_threads() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 numba threads")
    if not _numpy_blas_threads(threadpoolctl):
        pytest.skip("numpy's BLAS is not one threadpoolctl sees")
    seen: list[int] = []
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(2)
        with threadpoolctl.threadpool_limits(2, user_api="blas"):
            run_blocks(lambda i: seen.extend(_numpy_blas_threads(threadpoolctl)), 4)
            after = _numpy_blas_threads(threadpoolctl)
    finally:
        numba.set_num_threads(before)
    assert seen and set(seen) == {1}  # inside: one BLAS thread per block thread
    assert set(after) == {2}  # restored afterwards
