"""Each model's arithmetic against a naive reference written from the paper's formulas."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from embedlab.models import FM, AutoInt, DCNv2, DeepFM
from embedlab.models.autoint import InteractingLayer
from embedlab.models.dcnv2 import CrossLayerV2
from embedlab.models.fm import fm_interaction
from embedlab.tables import Field, FullTable

IdSampler = Callable[..., torch.Tensor]

FIELDS = [Field("a", 40), Field("b", 30), Field("c", 20), Field("d", 10), Field("e", 5)]


def table(seed: int) -> FullTable:
    t = FullTable(FIELDS, dim=6, seed=seed)
    with torch.no_grad():
        t.weight.mul_(50.0)  # O(0.5) entries so interactions are not negligible
    return t


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fm_matches_double_loop_over_field_pairs(seed: int, random_ids: IdSampler) -> None:
    model = FM(table(seed), seed=seed).double()
    ids = random_ids(FIELDS, 7, seed=seed)
    emb = model.table(ids)
    expected = torch.empty(7, dtype=torch.float64)
    for b in range(7):
        total = model.bias.clone()
        for i in range(len(FIELDS)):
            total = total + torch.dot(model.linear_weight[i], emb[b, i])
            for j in range(i + 1, len(FIELDS)):
                total = total + torch.dot(emb[b, i], emb[b, j])
        expected[b] = total
    torch.testing.assert_close(model(ids), expected, rtol=1e-12, atol=1e-12)
    pairs = sum((emb[:, i] * emb[:, j]).sum(-1) for i in range(5) for j in range(i + 1, 5))
    torch.testing.assert_close(fm_interaction(emb), pairs, rtol=1e-12, atol=1e-12)


def test_deepfm_is_first_order_plus_fm_plus_mlp(random_ids: IdSampler) -> None:
    model = DeepFM(table(0), hidden=(), dropout=0.0).double().eval()
    ids = random_ids(FIELDS, 9)
    emb = model.table(ids)
    linear = model.mlp_out(emb.flatten(1)).squeeze(-1)
    expected = FM.forward_embeddings(model, emb, None) + linear  # type: ignore[arg-type]
    torch.testing.assert_close(model(ids), expected)


@pytest.mark.parametrize("low_rank", [None, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_cross_layer_matches_naive_formula(low_rank: int | None, seed: int) -> None:
    torch.manual_seed(seed)
    layer = CrossLayerV2(5, low_rank).double()
    proj = layer.proj
    if low_rank is None:
        assert isinstance(proj, torch.nn.Linear)
        w, b = proj.weight, proj.bias
    else:
        assert isinstance(proj, torch.nn.Sequential)
        v, u = proj[0], proj[1]
        assert isinstance(v, torch.nn.Linear) and isinstance(u, torch.nn.Linear)
        w, b = u.weight @ v.weight, u.bias  # U V^T: (5, r) @ (r, 5)
        assert u.weight.shape == (5, low_rank) and v.weight.shape == (low_rank, 5)
    x0 = torch.randn(4, 5, dtype=torch.float64)
    x = torch.randn(4, 5, dtype=torch.float64)
    for r in range(4):
        expected = torch.stack(
            [
                x0[r, i] * (sum(w[i, k] * x[r, k] for k in range(5)) + b[i]) + x[r, i]
                for i in range(5)
            ]
        )
        torch.testing.assert_close(layer(x0[r : r + 1], x[r : r + 1])[0], expected)


@pytest.mark.parametrize("structure", ["parallel", "stacked"])
def test_dcnv2_composes_cross_mlp_and_output(structure: str, random_ids: IdSampler) -> None:
    model = DCNv2(table(0), n_cross=2, hidden=(7,), dropout=0.0, structure=structure)  # type: ignore[arg-type]
    model = model.double().eval()
    ids = random_ids(FIELDS, 5)
    x0 = model.table(ids).flatten(1)
    x1 = model.cross[0](x0, x0)
    x2 = model.cross[1](x0, x1)
    h = torch.cat([x2, model.mlp(x0)], dim=1) if structure == "parallel" else model.mlp(x2)
    torch.testing.assert_close(model(ids), model.out(h).squeeze(-1))


def test_interacting_layer_shapes_and_naive_attention() -> None:
    torch.manual_seed(0)
    layer = InteractingLayer(6, n_heads=2, head_dim=4).double()
    x = torch.randn(3, 5, 6, dtype=torch.float64)  # (batch, tokens, dim)
    attn = layer.attention(x)
    assert attn.shape == (3, 2, 5, 5)
    torch.testing.assert_close(attn.sum(-1), torch.ones(3, 2, 5, dtype=torch.float64))
    out = layer(x)
    assert out.shape == (3, 5, 8)
    wq, wk, wv, wr = (m.weight for m in (layer.query, layer.key, layer.value, layer.residual))  # type: ignore[union-attr]
    for b in range(3):
        heads = []
        for h in range(2):
            rows = slice(4 * h, 4 * h + 4)
            q, k, v = x[b] @ wq[rows].T, x[b] @ wk[rows].T, x[b] @ wv[rows].T  # (tokens, 4)
            alpha = torch.softmax(q @ k.T, dim=-1)  # eq. 5: unscaled <W_q e_m, W_k e_k>
            torch.testing.assert_close(attn[b, h], alpha)
            heads.append(alpha @ v)
        expected = torch.relu(torch.cat(heads, dim=1) + x[b] @ wr.T)
        torch.testing.assert_close(out[b], expected)


def test_autoint_stacks_layers_and_embeds_dense_as_tokens(random_ids: IdSampler) -> None:
    model = AutoInt(table(0), n_layers=2, n_heads=3, head_dim=4, n_dense=2).double().eval()
    ids = random_ids(FIELDS, 4)
    dense = torch.randn(4, 2, dtype=torch.float64)
    tokens = model.tokens(model.table(ids), dense)
    assert tokens.shape == (4, len(FIELDS) + 2, 6)
    torch.testing.assert_close(tokens[:, -1], dense[:, 1:2] * model.dense_embedding[1])  # type: ignore[index]
    inter = model.interact(model.table(ids), dense)
    assert inter.shape == (4, len(FIELDS) + 2, 12)
    assert model.layers[1].query.in_features == 12  # type: ignore[union-attr]
    torch.testing.assert_close(model(ids, dense), model.out(inter.flatten(1)).squeeze(-1))
