"""The MAE decoder term of Starbucks' SMAE pre-training."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from embedlab.training.smae import MLMHead, SimpleTokenizer, SMAEConfig, SMAEEncoder, pretrain_smae
from embedlab.training.smae_mae import MAEDecoder, mae_term, smae_mae_loss

VOCAB, HIDDEN = 13, 16


def toy(seed: int = 0) -> tuple[SMAEEncoder, MLMHead, MAEDecoder, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)
    cfg = SMAEConfig(VOCAB, hidden=HIDDEN, layers=2, heads=2, ffn=32, max_length=8, dropout=0)
    encoder, head = SMAEEncoder(cfg).eval(), MLMHead(HIDDEN, VOCAB)
    decoder = MAEDecoder(encoder).eval()
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (3, 6), generator=gen)
    attn = torch.ones(3, 6, dtype=torch.long)
    attn[2, 4:] = 0
    labels = torch.where(torch.rand(3, 6, generator=gen) < 0.5, ids, torch.full_like(ids, -100))
    labels[0, 1] = ids[0, 1]
    dec_labels = torch.where(torch.rand(3, 6, generator=gen) < 0.5, ids, torch.full_like(ids, -100))
    dec_labels[1, 2] = ids[1, 2]
    labels[attn == 0], dec_labels[attn == 0] = -100, -100  # pads are never masked
    batch = {"ids": ids, "attn": attn, "labels": labels, "dec_labels": dec_labels}
    return encoder, head, decoder, batch


def hand_transform(head: MLMHead, h: torch.Tensor) -> torch.Tensor:
    """The head's dense (first ``len(h)`` columns), exact GELU and LayerNorm, in float64."""
    w, b = head.dense.weight.double(), head.dense.bias.double()
    g, beta, eps = head.norm.weight.double(), head.norm.bias.double(), head.norm.eps
    x = w[:, : h.shape[-1]] @ h.double() + b
    x = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    return (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + eps) * g + beta


def naive_mae(hidden, dim, head, decoder, ids, dec_labels, attn) -> float:
    """Float64 loop over rows and masked positions: [CLS] -> transform -> decoder (one row
    at a time) -> the full MLM head (transform + vocabulary layer) -> -log softmax."""
    wd, bd = head.decoder.weight.double(), head.decoder.bias.double()
    terms = []
    for i in range(ids.shape[0]):
        first = hand_transform(head, hidden[i, 0, :dim]).float()
        out = decoder(first[None], ids[i : i + 1], attn[i : i + 1])[0]
        for j in range(ids.shape[1]):
            y = int(dec_labels[i, j])
            if y != -100:
                z = wd @ hand_transform(head, out[j]) + bd
                terms.append(float(torch.logsumexp(z, 0) - z[y]))
    return sum(terms) / len(terms)


@torch.no_grad()
def test_loss_is_the_pairwise_mean_of_mlm_and_mae() -> None:
    encoder, head, decoder, b = toy()
    states = encoder(b["ids"], b["attn"])
    pairs = [(1, 4), (2, 16)]
    got = smae_mae_loss(
        states, b["labels"], head, pairs, decoder, b["ids"], b["dec_labels"], b["attn"]
    )
    per_pair = []
    for layer, dim in pairs:
        logits = head(states[layer][..., :dim])
        mlm = F.cross_entropy(logits.reshape(-1, VOCAB), b["labels"].reshape(-1), ignore_index=-100)
        mae = naive_mae(states[layer], dim, head, decoder, b["ids"], b["dec_labels"], b["attn"])
        per_pair.append((float(mlm) + mae) / 2)
    assert float(got) == pytest.approx(sum(per_pair) / len(per_pair), rel=1e-5)


@torch.no_grad()
def test_the_first_decoder_token_is_replaced_by_the_cls_vector() -> None:
    encoder, head, decoder, b = toy(1)
    states = encoder(b["ids"], b["attn"])
    other = b["ids"].clone()
    other[:, 0] = (other[:, 0] + 1) % VOCAB  # the first token never reaches the decoder
    args = (head, decoder)
    a = mae_term(states[2], 8, *args, b["ids"], b["dec_labels"], b["attn"])
    c = mae_term(states[2], 8, *args, other, b["dec_labels"], b["attn"])
    assert float(a) == pytest.approx(float(c), rel=1e-6)
    shifted = [s.clone() for s in states]
    shifted[2][:, 0, :8] += 1.0  # but the [CLS] vector's first dim coordinates do
    d = mae_term(shifted[2], 8, *args, b["ids"], b["dec_labels"], b["attn"])
    assert abs(float(d) - float(a)) > 1e-4


def test_decoder_shares_the_encoder_embeddings() -> None:
    encoder, _, decoder, _ = toy()
    assert decoder.tokens is encoder.tokens and decoder.positions is encoder.positions


def test_errors_name_the_problem() -> None:
    encoder, head, decoder, b = toy()
    states = encoder(b["ids"], b["attn"])
    none = torch.full_like(b["ids"], -100)
    with pytest.raises(ValueError, match=r"decoder_labels must have at least one masked"):
        smae_mae_loss(states, b["labels"], head, [(1, 4)], decoder, b["ids"], none, b["attn"])
    with pytest.raises(ValueError, match=r"dim must be in \[1, 16\], got 17"):
        mae_term(states[1], 17, head, decoder, b["ids"], b["dec_labels"], b["attn"])


def test_cpu_steps_with_the_mae_term_decrease_the_loss() -> None:
    torch.set_num_threads(1)
    texts = ["the cat sat on the mat", "a dog ran in the park", "the sun is hot today"] * 6
    tok = SimpleTokenizer.from_texts(texts)
    cfg = SMAEConfig(tok.vocab_size, hidden=32, layers=2, heads=2, ffn=64, max_length=16, dropout=0)
    res = pretrain_smae(
        texts, tok, config=cfg, steps=60, batch_size=18, lr=3e-3, mae=True, device="cpu"
    )
    assert isinstance(res.decoder, MAEDecoder)
    first, last = sum(res.losses[:5]) / 5, sum(res.losses[-5:]) / 5
    assert last < 0.6 * first, (first, last)
