"""index_factory / parse_index_spec: one test per token plus the errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedlab.index import Binary, Flat, Int8, Matryoshka, Rerank, index_factory
from embedlab.index.factory import parse_index_spec


def test_flat_token() -> None:
    index = index_factory(16, "Flat", metric="l2")
    assert isinstance(index, Flat) and index.metric == "l2" and index.dim == 16


def test_int8_token_with_keywords() -> None:
    index = index_factory(16, "Int8(calibration=percentile, percentile=99)")
    assert isinstance(index, Int8)
    assert index.calibration == "percentile" and index.percentile == 99.0


def test_binary_token() -> None:
    assert isinstance(index_factory(16, "Binary"), Binary)


def test_bebr_token_maps_bits() -> None:
    assert parse_index_spec("BEBR2") == [("BEBR", {"bits": 2})]
    assert parse_index_spec("BEBR1(seed=3)") == [("BEBR", {"bits": 1, "seed": 3})]


def test_pq_token_maps_m_and_optional_nbits() -> None:
    assert parse_index_spec("PQ48") == [("PQ", {"m": 48})]
    assert parse_index_spec("PQ48x4") == [("PQ", {"m": 48, "nbits": 4})]


def test_opq_token() -> None:
    assert parse_index_spec("OPQ32") == [("OPQ", {"m": 32})]


def test_matryoshka_token() -> None:
    index = index_factory(64, "Matryoshka16")
    assert isinstance(index, Matryoshka) and index.d == 16 and index.spec() == "Matryoshka16"


def test_rerank_stage_default_and_k_factor() -> None:
    index = index_factory(32, "Binary,Rerank")
    assert isinstance(index, Rerank) and isinstance(index.base, Binary) and index.k_factor == 10
    index = index_factory(32, "Binary,Rerank(Flat,k_factor=20)", metric="ip")
    assert isinstance(index, Rerank) and index.k_factor == 20 and index.base.metric == "ip"
    assert index.spec() == "Binary,Rerank(Flat,k_factor=20)"
    assert index_factory(32, index.spec()).spec() == index.spec()  # spec round trip


def test_storage_keyword_goes_to_rerank(tmp_path: Path) -> None:
    import numpy as np

    index = index_factory(8, "Binary,Rerank(Flat)", storage=tmp_path / "vec")
    index.add(np.ones((3, 8), np.float32))
    assert isinstance(index, Rerank) and index.vectors_path is not None
    assert index.vectors_path.parent == tmp_path / "vec"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("LSH32", r"'LSH32' does not parse.*valid forms: Flat, Int8, Binary, BEBR\{bits\}"),
        ("BEBR", r"'BEBR' does not parse.*valid forms"),
        ("PQx8", r"'PQx8' does not parse"),
        ("Flat(", r"unbalanced"),
        ("Rerank(Flat)", r"Rerank is a stage: it must follow a base index"),
        ("Flat,Binary", r"only Rerank stages may follow the base index"),
        ("Binary,Rerank(Int8)", r"Rerank re-scores with Flat, got 'Int8'"),
        ("Binary,Rerank(k_factor=2,Flat)", r"only the first argument may be positional"),
        ("Int8(99)", r"arguments must be key=value"),
        ("", r"index spec must be a non-empty string"),
        ("Flat,,Rerank", r"empty entry"),
    ],
)
def test_bad_tokens(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_index_spec(spec)


def test_unknown_hyper_parameter_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown hyper-parameter 'bits' for Int8; valid: "):
        index_factory(8, "Int8(bits=2)")


def test_keyword_no_stage_takes() -> None:
    with pytest.raises(ValueError, match=r"keyword 'storage' is taken by no stage"):
        index_factory(8, "Flat", storage="x")


def test_bad_metric_lists_valid_values() -> None:
    with pytest.raises(ValueError, match=r"metric must be one of cos, ip, l2; got 'dot'"):
        index_factory(8, "Flat", metric="dot")  # type: ignore[arg-type]


def test_bad_k_factor() -> None:
    with pytest.raises(ValueError, match=r"k_factor must be >= 1, got 0"):
        index_factory(8, "Binary,Rerank(Flat,k_factor=0)")


def test_matryoshka_d_larger_than_dim() -> None:
    with pytest.raises(ValueError, match=r"d must be <= 8 \(dim\), got 16"):
        index_factory(8, "Matryoshka16")
