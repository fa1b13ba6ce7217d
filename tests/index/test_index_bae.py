"""BAE: bit packing, Hamming and asymmetric scores against naive loops, training, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlab.bench.retrieval import resolve_method
from embedlab.index import BAE, index_factory, load_index
from embedlab.index.bae import pack_bits, unpack_bits
from embedlab.index.factory import parse_index_spec

DIM = 32


def data(seed: int = 0, n: int = 400, n_q: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Clustered vectors with a shared mean direction (like sentence embeddings)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((16, DIM))
    lab = rng.integers(0, 16, n + n_q)
    x = centres[lab] + 0.5 * rng.standard_normal((n + n_q, DIM)) + 2.0
    x = x.astype(np.float32)
    return x[n_q:], x[:n_q]


@pytest.fixture(scope="module")
def trained() -> tuple[BAE, np.ndarray, np.ndarray]:
    x, q = data()
    index = BAE(DIM, bits=40, epochs=3, scoring="asym")
    index.train(x)
    index.add(x)
    return index, x, q


@pytest.mark.parametrize("bits", [8, 24, 64, 72, 256])
@pytest.mark.parametrize("seed", [0, 1])
def test_pack_bits_round_trips_and_matches_a_naive_layout(bits: int, seed: int) -> None:
    b = np.random.default_rng(seed).random((7, bits)) < 0.5
    packed = pack_bits(b)
    assert packed.dtype == np.uint64 and packed.shape == (7, -(-bits // 64))
    np.testing.assert_array_equal(unpack_bits(packed, bits), b)
    for i in range(7):  # bit j of a row is bit j % 64 of word j // 64
        for j in range(bits):
            assert bool((int(packed[i, j // 64]) >> (j % 64)) & 1) == bool(b[i, j])
        for j in range(bits, packed.shape[1] * 64):  # padding bits stay zero
            assert not (int(packed[i, j // 64]) >> (j % 64)) & 1


def test_hamming_scores_match_a_naive_popcount() -> None:
    x, q = data(1)
    index = BAE(DIM, bits=24, epochs=2)
    index.train(x)
    index.add(x)
    scores, ids = index.search(q, 400)
    cq, cx = index.encode(q), unpack_bits(index.codes, 24)
    for i in range(q.shape[0]):
        naive = [-float(np.sum(cq[i] != cx[j])) for j in range(x.shape[0])]
        np.testing.assert_array_equal(scores[i], np.asarray(naive)[ids[i]])
        assert sorted(naive, reverse=True) == scores[i].tolist()


def test_asym_scores_are_the_bernoulli_log_likelihood(trained: tuple) -> None:
    index, x, q = trained
    scores, ids = index.search(q, 10)
    logits = index.logits(q).astype(np.float64)
    bits = unpack_bits(index.codes, index.bits)
    p = 1.0 / (1.0 + np.exp(-logits))
    for i in range(q.shape[0]):
        ll = [
            sum(np.log(p[i, j]) if bits[r, j] else np.log1p(-p[i, j]) for j in range(index.bits))
            for r in range(x.shape[0])
        ]
        np.testing.assert_allclose(scores[i], np.asarray(ll)[ids[i]], rtol=1e-4, atol=1e-3)
        assert np.isclose(scores[i, 0], max(ll), rtol=1e-4, atol=1e-3)


def test_codes_are_deterministic_thresholds_of_the_encoder(trained: tuple) -> None:
    index, x, _ = trained
    np.testing.assert_array_equal(unpack_bits(index.codes, index.bits), index.logits(x) > 0)
    assert index.code_bytes == 5 and index.codes.shape == (x.shape[0], 1)


def test_training_lowers_the_reconstruction_loss_and_decodes() -> None:
    x, _ = data(2)
    index = BAE(DIM, bits=64, epochs=4, batch_size=32)
    index.train(x)
    assert index.train_losses[-1] < 0.5 * index.train_losses[0]  # measured 0.40 -> 0.045
    recon = index.decode(index.encode(x))
    assert recon.shape == x.shape and recon.dtype == np.float32
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = (recon * xn).sum(1) / np.linalg.norm(recon, axis=1)
    assert float(cos.mean()) > 0.95  # measured 0.978


def test_same_seed_same_codes_other_seed_other_codes() -> None:
    x, _ = data(3)
    codes = []
    for seed in (4, 4, 5):
        index = BAE(DIM, bits=16, epochs=1, seed=seed)
        index.train(x)
        codes.append(index.encode(x))
    np.testing.assert_array_equal(codes[0], codes[1])
    assert not np.array_equal(codes[0], codes[2])


def test_l2_metric_scales_inputs_and_round_trips(tmp_path: Path) -> None:
    x, q = data(4)
    index = index_factory(DIM, "BAE16(epochs=1)", metric="l2")
    index.train(100.0 * x)
    index.add(100.0 * x)
    assert isinstance(index, BAE) and index.config.loss == "mse"
    assert index.input_scale > 100.0
    index.save(tmp_path / "ix")
    loaded = load_index(tmp_path / "ix")
    assert isinstance(loaded, BAE) and loaded.input_scale == index.input_scale
    np.testing.assert_array_equal(loaded.search(q, 5)[1], index.search(q, 5)[1])


def test_factory_tokens_and_bench_alias() -> None:
    assert parse_index_spec("BAE256") == [("BAE", {"bits": 256})]
    assert parse_index_spec("BAE64(scoring=asym)") == [("BAE", {"bits": 64, "scoring": "asym"})]
    assert index_factory(384, "BAE256,Rerank(Flat)").spec() == "BAE256,Rerank(Flat,k_factor=10)"
    assert index_factory(384, "BAE128(scoring=asym)").spec() == "BAE128(scoring=asym)"
    assert resolve_method("bae256") == "BAE256"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bits": 250}, r"bits must be a multiple of 8 .*got 250"),
        ({"bits": 4}, r"bits must be >= 8, got 4"),
        ({"scoring": "cosine"}, r"scoring must be one of asym, hamming; got 'cosine'"),
        ({"loss": "l1"}, r"loss must be one of cos, mse; got 'l1'"),
        ({"code_weight": -1.0}, r"code_weight must be >= 0, got -1.0"),
    ],
)
def test_bad_hyper_parameters_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BAE(DIM, **kwargs)


def test_bad_spec_bits_and_bad_decode_input(trained: tuple) -> None:
    with pytest.raises(ValueError, match=r"bits must be a multiple of 8 .*got 12"):
        index_factory(DIM, "BAE12")
    index = trained[0]
    with pytest.raises(ValueError, match=r"bits must have shape \(n, 40\), got \(2, 8\)"):
        index.decode(np.zeros((2, 8)))
    with pytest.raises(ValueError, match="bits must hold only 0/1"):
        index.decode(np.full((2, 40), 2))
