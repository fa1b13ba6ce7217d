"""Every registered model, with every registered table: shapes, gradients, seeds, state dicts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from embedlab.models import MODELS, CTRModel, make_model
from embedlab.tables import TABLES, BudgetError, EmbeddingTable, Field, make_table

IdSampler = Callable[..., torch.Tensor]

#: hyper-parameters that keep each model tiny in tests (unlisted models use defaults)
SMALL: dict[str, dict[str, Any]] = {
    "deepfm": {"hidden": (16, 16)},
    "dcnv2": {"hidden": (16,), "n_cross": 2},
    "autoint": {"head_dim": 8},
    "autoint_plus": {"head_dim": 8, "hidden": (16,)},
    "din": {"attention_hidden": (8,), "hidden": (16,)},
}


def small(name: str) -> dict[str, Any]:
    """Tiny hyper-parameters; models that need a history attend over field 0's ids."""
    kwargs = dict(SMALL.get(name, {}))
    if MODELS.get(name).requires_history:
        kwargs["history_field"] = 0
    return kwargs


def run(model: CTRModel, ids: torch.Tensor, dense: torch.Tensor | None = None) -> torch.Tensor:
    """``model(ids, dense)``, with a fixed random history (pads, an empty row) if it takes one."""
    history = None
    if model.history_field is not None:
        card = model.table.fields[model.history_field].cardinality
        gen = torch.Generator().manual_seed(0)
        history = torch.randint(0, card, (ids.shape[0], 5), generator=gen)
        history[::2, 3:] = -1
        history[0] = -1
    return model(ids, dense, history)


MODEL_NAMES = MODELS.names()
TABLE_NAMES = TABLES.names()


def build_table(name: str, fields: list[Field], seed: int = 0) -> EmbeddingTable:
    try:
        return make_table(name, fields, dim=8, compression=1 if name == "full" else 10, seed=seed)
    except BudgetError as err:
        pytest.skip(f"{name} cannot fit 10x on the test fields: {err}")


def own_params(model: CTRModel) -> list[torch.nn.Parameter]:
    table = {id(p) for p in model.table.parameters()}
    return [p for p in model.parameters() if id(p) not in table]


@pytest.mark.parametrize("table_name", TABLE_NAMES)
@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_shape_finite_and_gradients(
    model_name: str, table_name: str, fields: list[Field], random_ids: IdSampler
) -> None:
    model = make_model(model_name, build_table(table_name, fields), **small(model_name))
    ids = random_ids(fields, 32)
    logits = run(model, ids)
    assert logits.shape == (32,)
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    (logits.sum() + model.regularization()).backward()
    table_grads = [p.grad for p in model.table.parameters() if p.requires_grad]
    assert any(g is not None and bool(g.abs().sum() > 0) for g in table_grads), "no grad in table"
    for p in own_params(model):
        assert p.grad is not None


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_dense_features_reach_the_output(
    model_name: str, fields: list[Field], random_ids: IdSampler
) -> None:
    model = make_model(model_name, build_table("full", fields), n_dense=3, **small(model_name))
    model.eval()
    ids = random_ids(fields, 16)
    dense = torch.randn(16, 3, requires_grad=True)
    logits = run(model, ids, dense)
    assert logits.shape == (16,)
    logits.sum().backward()
    assert dense.grad is not None and bool(dense.grad.abs().sum() > 0)
    assert all(p.grad is not None for p in own_params(model))


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_same_seed_same_weights(
    model_name: str, fields: list[Field], random_ids: IdSampler
) -> None:
    ids = random_ids(fields, 8)
    state = torch.random.get_rng_state()
    outs = []
    for seed in (3, 3, 4):
        model = make_model(model_name, build_table("full", fields), seed=seed, **small(model_name))
        model.eval()
        outs.append(run(model, ids))
    assert torch.equal(torch.random.get_rng_state(), state), "model init touched the global RNG"
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_state_dict_round_trip(
    model_name: str, fields: list[Field], tmp_path: Path, random_ids: IdSampler
) -> None:
    model = make_model(model_name, build_table("full", fields, seed=0), seed=0, **small(model_name))
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    other = make_model(model_name, build_table("full", fields, seed=1), seed=1, **small(model_name))
    other.load_state_dict(torch.load(path, weights_only=True))
    ids = random_ids(fields, 8)
    model.eval()
    other.eval()
    assert torch.equal(run(model, ids), run(other, ids))


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_out_of_range_ids_raise(
    model_name: str, fields: list[Field], random_ids: IdSampler
) -> None:
    model = make_model(model_name, build_table("full", fields), **small(model_name))
    ids = random_ids(fields, 4)
    ids[2, 1] = fields[1].cardinality
    with pytest.raises(ValueError, match="ids of field 'b' must be in"):
        run(model, ids)


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_dense_params_bytes_excludes_the_table(model_name: str, fields: list[Field]) -> None:
    model = make_model(model_name, build_table("full", fields), **small(model_name))
    total = sum(p.numel() * 4 for p in model.parameters())
    assert model.dense_params_bytes() == total - model.table.memory_bytes()
    assert model.regularization().shape == ()
