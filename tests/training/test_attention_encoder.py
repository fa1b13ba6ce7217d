"""The spatial-attention CNN encoder (DSL's attention module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from embedlab.training.attention_encoder import AttentionConvEncoder
from embedlab.training.encoders import make_encoder


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny tensors: extra threads only add contention on a 2-core runner."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_attention_gates_the_features_and_is_trained() -> None:
    torch.manual_seed(0)
    enc = make_encoder("cnn_attn", 16, (1, 28, 28), seed=3)
    assert isinstance(enc, AttentionConvEncoder)
    x = torch.rand(4, 1, 28, 28)
    a = enc.attention(x)
    assert a.shape == (4, 1, 7, 7) and bool(((a > 0) & (a < 1)).all())
    out = enc(x)
    h = enc.block2(enc.block1(x))
    assert torch.allclose(out, enc.head(enc.block3(h * a)))
    assert torch.equal(enc.forward_layers(x)[-1], out)
    out.pow(2).sum().backward()
    grads = [p.grad for p in enc.attend.parameters()]
    assert all(g is not None and float(g.abs().sum()) > 0 for g in grads)
    again = make_encoder("cnn_attn", 16, (1, 28, 28), seed=3)
    assert torch.equal(again(x), out.detach())


def test_attention_encoder_needs_square_images() -> None:
    with pytest.raises(ValueError, match=r"the cnn_attn encoder needs square images"):
        make_encoder("cnn_attn", 8, (1, 28, 20))
