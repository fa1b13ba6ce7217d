"""Starbucks 2D Matryoshka MLM pre-training (SMAE's MLM half)."""

from __future__ import annotations

import math

import pytest
import torch

from embedlab.training.smae import (
    NO_GPU,
    MLMHead,
    SimpleTokenizer,
    SMAEConfig,
    SMAEEncoder,
    default_pairs,
    mask_tokens,
    pretrain_smae,
    smae_loss,
)


def naive_loss(states, labels, head, pairs):
    """Float64 loop: per pair, per masked position, -log softmax of the truncated head."""
    head = head.requires_grad_(False)
    w, b = head.dense.weight.double(), head.dense.bias.double()
    g, beta, eps = head.norm.weight.double(), head.norm.bias.double(), head.norm.eps
    wd, bd = head.decoder.weight.double(), head.decoder.bias.double()
    total = 0.0
    for layer, dim in pairs:
        terms = []
        for i in range(labels.shape[0]):
            for j in range(labels.shape[1]):
                y = int(labels[i, j])
                if y == -100:
                    continue
                h = states[layer][i, j, :dim].double()
                x = w[:, :dim] @ h + b
                x = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
                x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + eps) * g + beta
                z = wd @ x + bd
                terms.append(float(torch.logsumexp(z, 0) - z[y]))
        total += sum(terms) / len(terms)
    return total / len(pairs)


def toy_states(seed=0, layers=4, hidden=16, vocab=11):
    gen = torch.Generator().manual_seed(seed)
    states = [torch.randn(3, 5, hidden, generator=gen) for _ in range(layers + 1)]
    labels = torch.randint(0, vocab, (3, 5), generator=gen)
    labels[torch.rand(3, 5, generator=gen) < 0.5] = -100
    labels[0, 0] = 2
    torch.manual_seed(seed)
    head = MLMHead(hidden, vocab)
    with torch.no_grad():
        head.norm.weight.uniform_(0.5, 1.5)
        head.norm.bias.normal_()
    return states, labels, head


def test_loss_matches_naive_float64_loop() -> None:
    states, labels, head = toy_states()
    pairs = [(1, 4), (2, 8), (4, 16), (3, 5)]
    got = smae_loss(states, labels, head, pairs).detach()
    assert float(got) == pytest.approx(naive_loss(states, labels, head, pairs), rel=1e-5)


def test_unmasked_positions_are_ignored() -> None:
    states, labels, head = toy_states(seed=1)
    pairs = default_pairs(4, 16)
    before = smae_loss(states, labels, head, pairs)
    noisy = [s.clone() for s in states]
    keep = labels == -100
    for s in noisy:
        s[keep] += 100 * torch.randn_like(s[keep])
    after = smae_loss(noisy, labels, head, pairs)
    assert torch.allclose(before, after)
    # ...while a masked position does change it.
    noisy[4][0, 0] += 5.0
    assert not torch.allclose(before, smae_loss(noisy, labels, head, pairs))


def test_loss_errors_name_the_problem() -> None:
    states, labels, head = toy_states()
    with pytest.raises(ValueError, match="pairs layer"):
        smae_loss(states, labels, head, [(9, 4)])
    with pytest.raises(ValueError, match="pairs dim"):
        smae_loss(states, labels, head, [(1, 17)])
    with pytest.raises(ValueError, match="masked position"):
        smae_loss(states, torch.full_like(labels, -100), head, [(1, 4)])


def test_default_pairs_scale_the_reference() -> None:
    assert default_pairs(12, 768) == [(2, 32), (4, 64), (6, 128), (8, 256), (10, 512), (12, 768)]
    assert default_pairs(4, 64)[-1] == (4, 64)
    assert default_pairs(6, 384) == [(1, 16), (2, 32), (3, 64), (4, 128), (5, 256), (6, 384)]


def test_masking_proportions() -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (200, 100), generator=gen)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = True
    inputs, labels = mask_tokens(
        ids, special, mask_id=3, vocab_size=1000, first_normal=5, probability=0.15, generator=gen
    )
    sel = labels != -100
    assert not bool(sel[:, 0].any())  # specials never selected
    assert torch.equal(labels[sel], ids[sel])
    assert sel.float().mean().item() == pytest.approx(0.15 * 0.99, abs=0.01)
    n = sel.sum().item()
    masked = (inputs[sel] == 3).sum().item() / n
    same = (inputs[sel] == ids[sel]).sum().item() / n
    assert masked == pytest.approx(0.8, abs=0.02)
    assert same == pytest.approx(0.1 + 0.1 / 995, abs=0.02)
    assert torch.equal(inputs[~sel], ids[~sel])  # unselected positions untouched
    assert int(inputs.min()) >= 3


def toy_corpus() -> list[str]:
    return ["the cat sat on the mat", "a dog ran in the park", "the sun is hot today"] * 6


def test_cpu_steps_decrease_loss() -> None:
    torch.set_num_threads(1)
    texts = toy_corpus()
    tok = SimpleTokenizer.from_texts(texts)
    cfg = SMAEConfig(tok.vocab_size, hidden=32, layers=2, heads=2, ffn=64, max_length=16, dropout=0)
    res = pretrain_smae(texts, tok, config=cfg, steps=60, batch_size=18, lr=3e-3, device="cpu")
    assert res.pairs == default_pairs(2, 32)
    first, last = sum(res.losses[:5]) / 5, sum(res.losses[-5:]) / 5
    assert last < 0.6 * first, (first, last)
    assert isinstance(res.encoder, SMAEEncoder)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the guard applies only without CUDA")
def test_gpu_guard_message() -> None:
    tok = SimpleTokenizer.from_texts(toy_corpus())
    with pytest.raises(ValueError, match=r"needs a GPU \(device='cuda'\); none is available"):
        pretrain_smae(toy_corpus(), tok, steps=1)
    assert "none is available" in NO_GPU


def test_cpu_refuses_a_large_config() -> None:
    tok = SimpleTokenizer.from_texts(toy_corpus())
    with pytest.raises(ValueError, match="tiny config"):
        pretrain_smae(toy_corpus(), tok, config=SMAEConfig(tok.vocab_size), device="cpu")


def test_tokenizer_encodes_with_specials() -> None:
    tok = SimpleTokenizer.from_texts(["Hello, world", "hello there"])
    ids = tok.encode("hello unknown", 8)
    assert ids[0] == tok.CLS and ids[-1] == tok.SEP
    assert ids[1] == tok.stoi["hello"] and ids[2] == tok.UNK
    assert len(tok.encode("hello " * 50, 8)) == 8
