"""Registry, spec strings and hyper-parameter validation of the CTR models."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from embedlab.models import (
    FM,
    LR,
    MODELS,
    AutoInt,
    AutoIntPlus,
    CTRModel,
    DCNv2,
    DeepFM,
    make_model,
    register_model,
)
from embedlab.tables import EmbeddingTable, Field, FullTable

IdSampler = Callable[..., torch.Tensor]


@pytest.fixture
def table() -> FullTable:
    return FullTable([Field("user", 50), Field("item", 80), Field("hour", 24)], dim=4)


def test_registered_names() -> None:
    assert {"lr", "fm", "deepfm", "dcnv2", "autoint", "autoint_plus"} <= set(MODELS.names())
    assert MODELS.get("deepfm") is DeepFM and DeepFM.name == "deepfm"
    assert MODELS.get("autoint_plus") is AutoIntPlus


def test_spec_string_parses_hidden_and_floats(table: FullTable) -> None:
    model = make_model("deepfm(hidden=400-400, dropout=0.1)", table)
    assert isinstance(model, DeepFM)
    assert model.hidden == (400, 400)
    assert model.dropout == 0.1
    assert make_model("deepfm(hidden=32)", table).hidden == (32,)
    assert make_model("deepfm(hidden=none)", table).hidden == ()


def test_python_sequences_and_overrides(table: FullTable) -> None:
    assert make_model("deepfm", table, hidden=[32, 16]).hidden == (32, 16)
    assert make_model("dcnv2(low_rank=8)", table, low_rank=None).low_rank is None
    model = make_model("dcnv2(low_rank=4, structure=stacked, n_cross=2)", table)
    assert isinstance(model, DCNv2)
    assert (model.low_rank, model.structure, model.n_cross) == (4, "stacked", 2)


def test_unknown_model_lists_valid_names(table: FullTable) -> None:
    with pytest.raises(ValueError, match=r"unknown model 'nope'; valid models: .*deepfm"):
        make_model("nope", table)


def test_unknown_hyper_parameter_lists_valid_ones(table: FullTable) -> None:
    with pytest.raises(ValueError, match=r"unknown hyper-parameter 'hiden' for model 'deepfm'"):
        make_model("deepfm(hiden=32)", table)


def test_bad_spec_raises(table: FullTable) -> None:
    with pytest.raises(ValueError, match="spec arguments must be key=value"):
        make_model("deepfm(400)", table)


@pytest.mark.parametrize(
    ("cls", "kwargs", "error", "match"),
    [
        (DeepFM, {"hidden": "400-x"}, ValueError, "hidden must be a sequence of integers >= 1"),
        (DeepFM, {"hidden": (400, 0)}, ValueError, "hidden must be a sequence of integers >= 1"),
        (DeepFM, {"hidden": 4.5}, TypeError, "hidden must be a sequence"),
        (DeepFM, {"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\), got 1.0"),
        (DeepFM, {"dropout": -0.1}, ValueError, "dropout must be >= 0"),
        (DeepFM, {"batch_norm": 1}, TypeError, "batch_norm must be True or False, got 1"),
        (DCNv2, {"n_cross": -1}, ValueError, "n_cross must be >= 0, got -1"),
        (DCNv2, {"low_rank": 0}, ValueError, "low_rank must be >= 1, got 0"),
        (DCNv2, {"structure": "serial"}, ValueError, "structure must be one of parallel, stacked"),
        (AutoInt, {"n_heads": 0}, ValueError, "n_heads must be >= 1, got 0"),
        (AutoInt, {"n_layers": 0}, ValueError, "n_layers must be >= 1, got 0"),
        (AutoInt, {"head_dim": 2.0}, TypeError, "head_dim must be an integer"),
        (AutoIntPlus, {"dropout": 2}, ValueError, "dropout must be in"),
        (LR, {"n_dense": -1}, ValueError, "n_dense must be >= 0, got -1"),
        (FM, {"seed": -3}, ValueError, "seed must be >= 0, got -3"),
    ],
)
def test_hyper_parameter_errors(
    table: FullTable, cls: type[CTRModel], kwargs: dict[str, object], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        cls(table, **kwargs)  # type: ignore[arg-type]


def test_table_must_be_an_embedding_table() -> None:
    with pytest.raises(TypeError, match="table must be an EmbeddingTable, got Linear"):
        FM(torch.nn.Linear(2, 2))  # type: ignore[arg-type]


def test_dense_errors(table: FullTable, random_ids: IdSampler) -> None:
    ids = random_ids(list(table.fields), 5)
    with pytest.raises(ValueError, match="dense must be given for a model built with n_dense=2"):
        FM(table, n_dense=2)(ids)
    with pytest.raises(
        ValueError, match=r"dense must have shape \(batch=5, n_dense=2\), got \(5, 3\)"
    ):
        FM(table, n_dense=2)(ids, torch.zeros(5, 3))
    with pytest.raises(ValueError, match="dense must be None for a model built with n_dense=0"):
        FM(table)(ids, torch.zeros(5, 1))


def test_first_order_lives_in_the_model_not_per_id(table: FullTable) -> None:
    model = LR(table)
    assert model.linear_weight.shape == (table.n_fields, table.dim)
    assert model.dense_params_bytes() == (table.n_fields * table.dim + 1) * 4


def test_register_model_sets_the_name() -> None:
    from embedlab._registry import Registry
    from embedlab.models import _registry as reg

    saved = reg.MODELS
    reg.MODELS = Registry("model")
    try:

        @register_model("tiny")
        class Tiny(LR):
            pass

        assert Tiny.name == "tiny" and reg.MODELS.get("tiny") is Tiny
    finally:
        reg.MODELS = saved
    assert "tiny" not in MODELS


def test_forward_with_embeddings_returns_the_lookup(
    table: FullTable, random_ids: IdSampler
) -> None:
    model = FM(table)
    ids = random_ids(list(table.fields), 3)
    logits, emb = model.forward_with_embeddings(ids)
    assert torch.equal(emb, table(ids))
    assert torch.equal(logits, model(ids))
    assert isinstance(model.table, EmbeddingTable)
