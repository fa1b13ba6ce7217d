"""MoHD (mixture of hidden dimensions) in AutoInt: the layer against a naive loop, errors,
and the CTR-model conformance checks run again with ``mohd`` switched on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import test_models_conformance as conf  # tests/models is on sys.path (rootdir conftest)
import torch

from embedlab.models import make_model
from embedlab.models._mohd import MoHD
from embedlab.tables import Field, FullTable

IdSampler = conf.IdSampler


def naive_mohd(layer: MoHD, h: torch.Tensor) -> np.ndarray:
    """Token by token in float64: shared groups, top-k routed groups, activation scaling."""
    x = h.detach().double().numpy()
    w_r = layer.router.weight.detach().double().numpy()  # type: ignore[union-attr]
    b_r = layer.router.bias.detach().double().numpy()  # type: ignore[union-attr]
    size = layer.width // layer.n_groups
    out = np.zeros_like(x)
    for idx in np.ndindex(*x.shape[:-1]):
        tok = x[idx]
        logits = w_r @ tok + b_r
        gates = np.exp(logits - logits.max())
        gates /= gates.sum()
        top = np.argsort(-gates, kind="stable")[: layer.k]
        for g in range(layer.n_groups):
            if g < layer.n_shared:
                w = 1.0
            elif g - layer.n_shared in top:
                w = layer.k * gates[g - layer.n_shared] / gates[top].sum()
            else:
                w = 0.0
            sl = slice(g * size, (g + 1) * size)
            out[idx][sl] = w * tok[sl] * layer.n_groups / layer.n_active
    return out


@pytest.mark.parametrize(
    ("width", "ratio", "groups", "shared", "k"),
    [(16, 0.5, 8, 2, 2), (64, 0.25, 8, 1, 1), (12, 0.5, 8, 1, 2), (32, 0.75, 4, 1, 2)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_layer_matches_a_naive_loop(
    width: int, ratio: float, groups: int, shared: int, k: int, seed: int
) -> None:
    torch.manual_seed(seed)
    layer = MoHD(width, ratio, n_groups=groups)
    assert (layer.n_shared, layer.k) == (shared, k)
    h = torch.randn(3, 5, width)
    out = layer(h).detach()
    np.testing.assert_allclose(out.double().numpy(), naive_mohd(layer, h), rtol=1e-5, atol=1e-6)
    # exactly n_active groups of every token are non-zero
    nonzero = out.unflatten(-1, (layer.n_groups, -1)).abs().sum(-1) > 0
    assert bool((nonzero.sum(-1) == layer.n_active).all())


def test_ratio_one_is_the_dense_layer_and_the_router_learns() -> None:
    h = torch.randn(2, 4, 16)
    dense = MoHD(16, 1.0)
    assert dense.router is None and torch.equal(dense(h), h)
    layer = MoHD(16, 0.5)
    layer(h).pow(2).sum().backward()
    assert layer.router is not None and layer.router.weight.grad is not None
    assert float(layer.router.weight.grad.abs().sum()) > 0


def test_autoint_mohd_sparsifies_every_interacting_layer() -> None:
    table = FullTable([Field("a", 10), Field("b", 20), Field("c", 5)], dim=4)
    model = make_model("autoint(mohd=0.5, head_dim=8)", table)
    assert all(layer.mohd is not None for layer in model.layers)  # type: ignore[union-attr]
    x = model.tokens(table(torch.tensor([[1, 2, 3]])), None)
    out = model.layers[0](x).detach()  # type: ignore[index]
    per_group = out.unflatten(-1, (8, 2)).abs().sum(-1) > 0  # 16 dims, 8 groups
    assert bool((per_group.sum(-1) <= 4).all())  # at most half the groups pass
    dense = make_model("autoint(head_dim=8)", table)
    assert all(layer.mohd is None for layer in dense.layers)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("autoint(mohd=1.5)", ValueError, r"mohd must be in \(0, 1\].*got 1.5"),
        ("autoint(mohd=0)", ValueError, r"mohd must be > 0, got 0"),
        ("autoint(mohd=-0.5)", ValueError, r"mohd must be > 0, got -0.5"),
        ("autoint_plus(mohd=2)", ValueError, r"mohd must be in \(0, 1\].*got 2"),
        ("autoint(mohd=0.5, mohd_groups=0)", ValueError, r"mohd_groups must be >= 1, got 0"),
    ],
)
def test_bad_mohd_is_named(spec: str, error: type[Exception], match: str) -> None:
    table = FullTable([Field("a", 10), Field("b", 20)], dim=4)
    with pytest.raises(error, match=match):
        make_model(spec, table)


@pytest.mark.parametrize("model_name", ["autoint", "autoint_plus"])
def test_mohd_models_pass_the_conformance_checks(
    model_name: str,
    fields: list[Field],
    random_ids: IdSampler,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(conf.SMALL, model_name, {**conf.SMALL[model_name], "mohd": 0.5})
    model = make_model(model_name, conf.build_table("full", fields), **conf.small(model_name))
    assert model.layers[0].mohd is not None  # type: ignore[index]
    for table_name in ("full", "qr", "hash"):
        conf.test_shape_finite_and_gradients(model_name, table_name, fields, random_ids)
    conf.test_dense_features_reach_the_output(model_name, fields, random_ids)
    conf.test_same_seed_same_weights(model_name, fields, random_ids)
    conf.test_state_dict_round_trip(model_name, fields, tmp_path, random_ids)
    conf.test_out_of_range_ids_raise(model_name, fields, random_ids)
    conf.test_dense_params_bytes_excludes_the_table(model_name, fields)
