"""DIN with history items that carry their category (history_side_fields), as in the paper."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from embedlab.data._dataset import CTRDataset
from embedlab.models import DIN, count_ids, make_model
from embedlab.tables import Field, FullTable
from embedlab.training import CTRTrainer

FIELDS = [Field("user", 30), Field("item", 50), Field("cat", 6)]
SMALL: dict[str, Any] = {"attention_hidden": (8, 4), "hidden": (16,)}


def _model(seed: int = 0, **kwargs: Any) -> DIN:
    table = FullTable(FIELDS, dim=5, seed=seed, init_std=0.3)
    return DIN(table, history_field=1, history_side_fields=(2,), seed=seed, **{**SMALL, **kwargs})


def _batch(seed: int, batch: int = 10, max_len: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """ids ``(batch, 3)`` and a ``(batch, max_len, 2)`` history (item, category), -1 pads."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.stack([torch.randint(0, f.cardinality, (batch,), generator=gen) for f in FIELDS], 1)
    items = torch.randint(0, 50, (batch, max_len), generator=gen)
    cats = torch.randint(0, 6, (batch, max_len), generator=gen)
    lengths = torch.randint(0, max_len + 1, (batch,), generator=gen)
    lengths[0], lengths[1] = 0, max_len  # an empty and a full history
    pad = torch.arange(max_len)[None, :] >= lengths[:, None]
    items[pad], cats[pad] = -1, -1
    return ids, torch.stack([items, cats], dim=-1)


@pytest.mark.parametrize("norm", ["none", "softmax"])
@pytest.mark.parametrize("seed", [0, 1])
def test_attention_over_item_and_category_matches_a_float64_loop(norm: str, seed: int) -> None:
    model = _model(seed, attention_norm=norm).double().eval()
    ids, history = _batch(seed)
    _, emb = model.forward_with_embeddings(ids, None, history)
    pooled = emb[:, 3:].flatten(start_dim=1)  # (batch, 2 * dim): item part, category part
    w = model.table.weight.detach()
    items, cats = w[model.table.offsets[1] : model.table.offsets[2]], w[model.table.offsets[2] :]
    with torch.no_grad():
        for b in range(ids.shape[0]):
            q = torch.cat([items[ids[b, 1]], cats[ids[b, 2]]])
            keys, scores = [], []
            for item, cat in history[b].tolist():
                if item < 0:
                    continue
                k = torch.cat([items[item], cats[cat]])
                unit_in = torch.cat([q, k, q - k, q * k])[None, :]
                keys.append(k)
                scores.append(model.attention_out(model.attention(unit_in))[0, 0])
            expected = torch.zeros(10, dtype=torch.float64)
            if keys:
                s = torch.stack(scores)
                weight = s if norm == "none" else torch.softmax(s / 10**0.5, dim=0)
                expected = (weight[:, None] * torch.stack(keys)).sum(0)
            torch.testing.assert_close(pooled[b], expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("norm", ["none", "softmax"])
def test_pads_weigh_zero_whatever_their_ids(norm: str) -> None:
    model = _model(attention_norm=norm).eval()
    ids, history = _batch(4)
    emb = model.table(ids)
    keys, mask = model.embed_history(history, ids.shape[0])
    assert keys.shape == (10, 6, 10) and torch.all(keys[~mask] == 0)
    w = model.attention_weights(emb[:, [1, 2]].flatten(1), keys, mask)
    assert torch.all(w[~mask] == 0) and torch.isfinite(w).all()
    if norm == "softmax":
        rows = mask.any(1)
        torch.testing.assert_close(w[rows].sum(1), torch.ones(int(rows.sum())))
    else:  # raw scores: the weights of a history do not sum to one
        assert not torch.allclose(w[mask.any(1)].sum(1), torch.ones(int(mask.any(1).sum())))
    garbage = history.clone()
    garbage[..., 1][history[..., 0] < 0] = 3  # a category id under a padded item is ignored
    torch.testing.assert_close(model(ids, history=garbage), model(ids, history=history))


def test_side_channel_shapes_counts_and_errors() -> None:
    model = _model()
    assert model.n_fields == 5 and model.attention[0].in_features == 4 * 10
    ids, history = _batch(0)
    with pytest.raises(ValueError, match=r"history must have shape \(batch=10, max_len, 2\)"):
        model(ids, history=history[..., 0])
    with pytest.raises(ValueError, match="history_side_fields must differ"):
        DIN(FullTable(FIELDS, 4), history_field=1, history_side_fields=(1,))
    with pytest.raises(ValueError, match=r"history_side_fields must be \(\) without"):
        make_model("deepfm", FullTable(FIELDS, 4), history_side_fields=(2,))
    for name in ("fm", "deepfm", "dcnv2", "autoint"):  # pooled as two extra fields
        m = make_model(name, FullTable(FIELDS, 4), history_field=1, history_side_fields=(2,))
        _, emb = m.forward_with_embeddings(ids, None, history)
        assert emb.shape == (10, 5, 4)
    data = CTRDataset(
        ids=np.array([[0, 1, 2], [1, 3, 4]]),
        labels=np.array([0.0, 1.0]),
        fields=tuple(FIELDS),
        history=np.array([[[1, 2], [-1, -1]], [[1, 2], [3, 4]]]),
        history_field=1,
        history_side_fields=(2,),
    )
    counts = count_ids(data)
    np.testing.assert_array_equal(counts[2], [0, 0, 3, 0, 2, 0])  # column 2, 4 + history 2, 2, 4
    np.testing.assert_array_equal(counts[1][:4], [0, 3, 0, 2])
    with pytest.raises(ValueError, match=r"padded \(-1\) at the same places"):
        CTRDataset(
            ids=data.ids,
            labels=data.labels,
            fields=data.fields,
            history=np.array([[[1, -1], [-1, -1]], [[1, 2], [3, 4]]]),
            history_field=1,
            history_side_fields=(2,),
        )
    with pytest.raises(ValueError, match=r"history ids must be -1 \(padding\) or in \[0, 6\)"):
        CTRDataset(
            ids=data.ids,
            labels=data.labels,
            fields=data.fields,
            history=np.array([[[1, 9], [-1, -1]], [[1, 2], [3, 4]]]),
            history_field=1,
            history_side_fields=(2,),
        )
    id_only = DIN(FullTable(FIELDS, 4), history_field=1, **SMALL)
    with pytest.raises(ValueError, match=r"must have history_side_fields=\(\)"):
        CTRTrainer(epochs=1, progress=False).fit(id_only, data)


def _planted(seed: int, n: int = 3000, n_items: int = 400, n_cats: int = 6) -> CTRDataset:
    """Click iff the candidate's category is among the history's (10% of labels flipped).

    Items are many and seen a few times each, so their ids say little; their
    categories say all.
    """
    rng = np.random.default_rng(seed)
    cat_of = rng.integers(n_cats, size=n_items)
    item = rng.integers(n_items, size=n)
    hist = rng.integers(n_items, size=(n, 4))
    label = (cat_of[hist] == cat_of[item][:, None]).any(axis=1)
    label ^= rng.random(n) < 0.1
    return CTRDataset(
        ids=np.stack([np.zeros(n, np.int64), item, cat_of[item]], axis=1),
        labels=label.astype(np.float32),
        fields=(Field("user", 1), Field("item", n_items), Field("cat", n_cats)),
        history=np.stack([hist, cat_of[hist]], axis=-1),
        history_field=1,
        history_side_fields=(2,),
    )


def _test_auc(data: CTRDataset, test: CTRDataset, side: bool) -> float:
    if not side:  # the same rows with the item ids only
        data, test = (
            CTRDataset(d.ids, d.labels, d.fields, history=d.history[..., 0], history_field=1)  # type: ignore[index]
            for d in (data, test)
        )
    table = FullTable(data.fields, dim=8, seed=0, init_std=0.3)
    model = DIN(
        table,
        history_field=1,
        history_side_fields=(2,) if side else (),
        attention_hidden=(16,),
        hidden=(16,),
        mba_lambda=0.0,
    )
    trainer = CTRTrainer(epochs=6, batch_size=128, lr=1e-2, patience=None, progress=False)
    trainer.fit(model, data)
    return trainer.evaluate(model, test)["auc"]


def test_attending_over_the_matching_category_helps() -> None:
    torch.manual_seed(0)
    train, test = _planted(0).split_two(0.8, seed=0)
    with torch.random.fork_rng(devices=[]):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with_category = _test_auc(train, test, side=True)
            ids_only = _test_auc(train, test, side=False)
        finally:
            torch.set_num_threads(threads)
    # the oracle (10% of labels flipped) reaches about 0.9; the ids alone about 0.5
    assert with_category > 0.7, with_category
    assert with_category > ids_only + 0.15, (with_category, ids_only)
