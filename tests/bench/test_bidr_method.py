from __future__ import annotations

import numpy as np
import pytest

from embedlab.bench._bidr_method import BiDRMethod, is_bidr_spec, make_bidr_method
from embedlab.bench.retrieval import (
    RetrievalBenchConfig,
    exact_search,
    parse_methods,
    resolve_method,
    run_retrieval_bench,
)
from embedlab.data.retrieval import RetrievalData
from embedlab.training.bidr import pseudo_queries, train_bidr

FAST = {"nbits": 4, "n_train": 60, "pq_epochs": 1, "dense_epochs": 1, "n_hard": 4, "batch_size": 16}


def clustered(seed: int, n: int = 300, d: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(12, d))
    x = centers[rng.integers(0, 12, n)] + 0.3 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_alias_resolves_to_bidr_spec() -> None:
    assert resolve_method("bidr_pq48") == "BiDR48"
    assert resolve_method("BIDR_PQ8") == "BiDR8"
    assert parse_methods("binary,bebr1,bae256,bidr_pq48") == ["Binary", "BEBR1", "BAE256", "BiDR48"]
    assert is_bidr_spec("BiDR48(pq_epochs=1)") and not is_bidr_spec("PQ48")


def test_method_is_the_trainer_and_build_index() -> None:
    x = clustered(0)
    idx = make_bidr_method(
        16, "BiDR4(nbits=4, n_train=60, pq_epochs=1, dense_epochs=1, n_hard=4)", seed=3
    )
    idx.train(x)
    idx.add(x)
    rows, pos = pseudo_queries(x, n_queries=60, k=10, seed=3)
    model = train_bidr(
        x, x[rows], pos, query_rows=rows, m=4, nbits=4, pq_epochs=1, dense_epochs=1, n_hard=4,
        batch_size=32, seed=3,
    )  # fmt: skip
    ref = model.build_index(x)
    assert idx.model is not None
    np.testing.assert_array_equal(idx.model.codebooks, model.codebooks)
    np.testing.assert_array_equal(idx.search(x[:20], 5)[1], ref.search(x[:20], 5)[1])
    assert idx.memory_bytes() == ref.memory_bytes() and idx.disk_bytes() == ref.disk_bytes()


def test_bench_runs_bidr_alongside_pq() -> None:
    x = clustered(1)
    data = RetrievalData(
        "toy", x[:250], [f"d{i}" for i in range(250)], x[:0], [],
        holdout=x[250:], holdout_ids=[f"h{i}" for i in range(50)],
    )  # fmt: skip
    spec = "BiDR4(" + ", ".join(f"{k}={v}" for k, v in FAST.items()) + ")"
    config = RetrievalBenchConfig(
        methods=[spec, "PQ4x4,Rerank(Flat)"], k=10, progress=False, latency_queries=3, repeats=1
    )
    bidr, pq = run_retrieval_bench(data, config)
    assert bidr.status == "ok", bidr.error
    assert bidr.method == spec and bidr.timing["train_s"] > 0
    # same codes and re-ranking file as PQ4x4,Rerank(Flat)
    assert bidr.memory_bytes == pq.memory_bytes
    assert bidr.params["disk_bytes_per_vector"] == pq.params["disk_bytes_per_vector"]
    _, truth = exact_search(data.corpus, data.holdout, 10)
    assert bidr.metrics["recall@10"] > 0.9  # measured 0.998 (PQ4x4 re-ranking 100 of 250)
    assert truth.shape == (50, 10)


def test_bad_specs_and_order() -> None:
    with pytest.raises(ValueError, match="m must divide dim=16, got m=5"):
        make_bidr_method(16, "BiDR5")
    with pytest.raises(ValueError, match=r"BiDR setting must be one of .*got epochs"):
        make_bidr_method(16, "BiDR4(epochs=2)")
    with pytest.raises(ValueError, match="spec must look like BiDR"):
        make_bidr_method(16, "PQ4")
    idx = BiDRMethod(16, 4)
    with pytest.raises(ValueError, match="must be trained before add"):
        idx.add(clustered(0))
    with pytest.raises(ValueError, match="call train\\(corpus\\) then add"):
        idx.search(clustered(0)[:2], 3)


def test_cli_checks_bidr_specs_before_loading() -> None:
    from typer.testing import CliRunner

    from embedlab.cli import app

    runner = CliRunner()
    out = runner.invoke(
        app, ["bench", "retrieval", "--data", "npy:/nonexistent.npy", "--methods", "BiDR4(x=1)"]
    )
    assert out.exit_code != 0
    assert "BiDR setting must be one of" in out.output
