"""Conditional cross-attention head: one embedding per attribute, training, MultiAspectIndex."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedlab.index.aspects import MultiAspectIndex
from embedlab.training.conditional_head import (
    ConditionalEmbedder,
    CrossAttentionHead,
    fit_conditional,
)


def _toy(n: int = 48) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """Two attributes: the colour channel that is lit, and whether the top or bottom half is."""
    rng = np.random.default_rng(0)
    ch, half = rng.integers(0, 3, n), rng.integers(0, 2, n)
    x = 0.05 * rng.random((n, 3, 8, 8)).astype(np.float32)
    for i in range(n):
        x[i, ch[i], 4 * half[i] : 4 * half[i] + 4] += 1.0
    return torch.as_tensor(x), {"channel": ch, "half": half}


def test_shapes_one_embedding_per_attribute() -> None:
    head = CrossAttentionHead(16, 3, 5, heads=4)
    assert head(torch.randn(2, 9, 16)).shape == (2, 3, 5)
    m = ConditionalEmbedder(["a", "b", "c"], dim=6, width=4, image_size=8)
    out = m(torch.randn(4, 3, 8, 8))
    assert out.shape == (4, 3, 6)
    aspects = m.embed_aspects(torch.randn(4, 3, 8, 8))
    assert list(aspects) == ["a", "b", "c"] and all(v.shape == (4, 6) for v in aspects.values())
    # the attributes' embeddings differ (distinct condition tokens)
    assert not np.allclose(aspects["a"], aspects["b"])


def test_training_separates_attributes_and_feeds_multi_aspect_index() -> None:
    torch.set_num_threads(1)
    x, labels = _toy()
    m = ConditionalEmbedder(["channel", "half"], dim=8, width=4, image_size=8, seed=0)
    hist = fit_conditional(m, x, labels, epochs=6, batch_size=24, lr=1e-2)
    assert hist[-1] < hist[0]
    aspects = m.embed_aspects(x)
    index = MultiAspectIndex({"channel": 8, "half": 8})
    index.add(aspects)
    for name in ("channel", "half"):
        _, ids = index.search({name: aspects[name]}, k=2, aspect=name)
        neighbour = ids[:, 1]  # ids[:, 0] is the query itself
        acc = float((labels[name][neighbour] == labels[name]).mean())
        assert acc > 0.8, (name, acc)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="attributes"):
        ConditionalEmbedder(["a", "a"])
    with pytest.raises(ValueError, match="attributes"):
        ConditionalEmbedder([])
    with pytest.raises(ValueError, match="heads"):
        CrossAttentionHead(10, 2, 4, heads=3)
    with pytest.raises(ValueError, match="tokens"):
        CrossAttentionHead(8, 2, 4)(torch.zeros(2, 5, 7))
    m = ConditionalEmbedder(["a", "b"], dim=4, width=2, image_size=8)
    x = torch.zeros(4, 3, 8, 8)
    with pytest.raises(ValueError, match="missing"):
        fit_conditional(m, x, {"a": np.zeros(4, dtype=int)})
    with pytest.raises(ValueError, match=r"labels\['b'\]"):
        fit_conditional(m, x, {"a": np.zeros(4, dtype=int), "b": np.zeros(3, dtype=int)})
    with pytest.raises(TypeError, match="model"):
        fit_conditional("m", x, {})  # type: ignore[arg-type]
