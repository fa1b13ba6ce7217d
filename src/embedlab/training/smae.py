"""Starbucks' 2D Matryoshka masked-LM pre-training (the MLM half of SMAE).

Zhuang et al., "Starbucks: Improved Training for 2D Matryoshka Embeddings", 2024. The
pre-training loss averages, over a fixed list of (layer, dim) pairs (the reference uses
``(2, 32), (4, 64), (6, 128), (8, 256), (10, 512), (12, 768)`` for BERT-base), the masked-LM
cross-entropy of layer ``layer``'s hidden states truncated to their first ``dim``
coordinates. As in the reference code there is **one shared MLM head**: its first dense
layer (hidden -> hidden) is applied with its weight matrix truncated to the first ``dim``
input columns (``W[:, :dim]``, full bias), followed by the usual GELU, LayerNorm and
vocabulary decoder. Ignored label positions hold ``-100``.

- :func:`smae_loss`: the loss from a model's hidden states (index 0 = embeddings);
- :func:`mask_tokens`: BERT masking (select ``p`` of the non-special tokens; of those 80%
  ``[MASK]``, 10% random token, 10% unchanged);
- :class:`SMAEEncoder` / :class:`MLMHead`: a small BERT-style encoder and its head;
- :func:`pretrain_smae`: AdamW pre-training; needs CUDA (``device="cuda"``) unless the
  caller passes ``device="cpu"`` with a tiny config (tests, toy runs).

The reference's MAE decoder term (a one-layer decoder reconstructing a second, more heavily
masked copy from the sub-model's [CLS] vector, averaged 1:1 with the MLM term per pair) is
in :mod:`embedlab.training.smae_mae` (``pretrain_smae(..., mae=True)``).
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from embedlab._validation import check_choice, check_int, check_positive_float
from embedlab.training._smae_model import (
    IGNORE,
    TINY_HIDDEN,
    TINY_LAYERS,
    MLMHead,
    SMAEConfig,
    SMAEEncoder,
    smae_loss,
)
from embedlab.training.smae_mae import DECODER_MLM_PROBABILITY, MAEDecoder, smae_mae_loss

__all__ = [
    "REFERENCE_PAIRS",
    "MLMHead",
    "SMAEConfig",
    "SMAEEncoder",
    "SMAEResult",
    "SimpleTokenizer",
    "default_pairs",
    "mask_tokens",
    "pretrain_smae",
    "smae_loss",
]

REFERENCE_PAIRS: tuple[tuple[int, int], ...] = (
    (2, 32),
    (4, 64),
    (6, 128),
    (8, 256),
    (10, 512),
    (12, 768),
)
NO_GPU = "SMAE pre-training needs a GPU (device='cuda'); none is available"


def default_pairs(layers: int, hidden: int) -> list[tuple[int, int]]:
    """The reference's (layer, dim) list scaled from BERT-base (12 x 768) to ``layers x hidden``.

    Layers scale by ``layers / 12`` and dims by ``hidden / 768`` (rounded, at least 1);
    duplicates after rounding are dropped; the last pair is always ``(layers, hidden)``.
    """
    check_int("layers", layers, min_value=1)
    check_int("hidden", hidden, min_value=1)
    out: list[tuple[int, int]] = []
    for lay, dim in REFERENCE_PAIRS:
        pair = (max(1, round(lay * layers / 12)), max(1, round(dim * hidden / 768)))
        if pair not in out:
            out.append(pair)
    return out


def mask_tokens(
    ids: torch.Tensor,
    special: torch.Tensor,
    *,
    mask_id: int,
    vocab_size: int,
    first_normal: int,
    probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: returns ``(inputs, labels)``; labels are ``-100`` where not selected.

    Each non-special position is selected with ``probability`` (at least one per batch);
    selected positions become ``[MASK]`` (80%), a random normal token in
    ``[first_normal, vocab_size)`` (10%) or stay unchanged (10%).
    """
    p = check_positive_float("probability", probability)
    if p >= 1.0:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    dev = ids.device

    def rand(shape: torch.Size) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device="cpu").to(dev)

    selected = (rand(ids.shape) < p) & ~special
    if not bool(selected.any()) and bool((~special).any()):
        first = int(torch.nonzero(~special.reshape(-1))[0])
        selected.view(-1)[first] = True
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE))
    inputs = ids.clone()
    u = rand(ids.shape)
    inputs[selected & (u < 0.8)] = mask_id
    swap = selected & (u >= 0.8) & (u < 0.9)
    random_ids = torch.randint(
        first_normal, vocab_size, ids.shape, generator=generator, device="cpu"
    ).to(dev)
    inputs[swap] = random_ids[swap]
    return inputs, labels


class SimpleTokenizer:
    """Word- or character-level vocabulary built from texts (no download); ids 0-4 are special.

    ``[PAD]=0, [CLS]=1, [SEP]=2, [MASK]=3, [UNK]=4``; ``encode`` adds ``[CLS]`` and ``[SEP]``.
    """

    SPECIALS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]", "[UNK]")
    PAD, CLS, SEP, MASK, UNK = range(5)

    def __init__(self, vocab: Sequence[str], *, level: Literal["word", "char"] = "word") -> None:
        self.level = check_choice("level", level, ("word", "char"))
        self.itos = list(self.SPECIALS) + [t for t in vocab if t not in self.SPECIALS]
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def from_texts(
        cls,
        texts: Sequence[str],
        *,
        level: Literal["word", "char"] = "word",
        max_vocab: int = 30000,
    ) -> SimpleTokenizer:
        """The ``max_vocab - 5`` most frequent tokens of ``texts`` (lower-cased)."""
        check_int("max_vocab", max_vocab, min_value=6)
        counts: Counter[str] = Counter()
        probe = cls([], level=level)
        for t in texts:
            counts.update(probe.split(t))
        return cls([w for w, _ in counts.most_common(max_vocab - 5)], level=level)

    def split(self, text: str) -> list[str]:
        """Lower-cased words (``\\w+`` or single punctuation) or characters."""
        text = text.lower()
        return list(text) if self.level == "char" else re.findall(r"\w+|[^\w\s]", text)

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included."""
        return len(self.itos)

    def encode(self, text: str, max_length: int) -> list[int]:
        """``[CLS] tokens [SEP]`` truncated to ``max_length`` ids."""
        ids = [self.stoi.get(t, self.UNK) for t in self.split(text)][: max_length - 2]
        return [self.CLS, *ids, self.SEP]


@dataclass
class SMAEResult:
    """Pre-trained encoder, its MLM head, the (layer, dim) pairs and per-step losses."""

    encoder: SMAEEncoder
    head: MLMHead
    pairs: list[tuple[int, int]]
    losses: list[float] = field(default_factory=list)
    decoder: nn.Module | None = None  # the MAE decoder when pre-trained with ``mae=True``


def _batch(
    tok: SimpleTokenizer, texts: Sequence[str], max_length: int, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [tok.encode(t, max_length) for t in texts]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tok.PAD, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
    return ids.to(device), (ids != tok.PAD).long().to(device)


def pretrain_smae(
    texts: Sequence[str],
    tokenizer: SimpleTokenizer,
    *,
    config: SMAEConfig | None = None,
    pairs: Sequence[tuple[int, int]] | None = None,
    steps: int = 1000,
    batch_size: int = 32,
    lr: float = 1e-4,
    weight_decay: float = 0.001,
    mlm_probability: float = 0.15,
    mae: bool = False,
    device: str = "cuda",
    seed: int = 0,
) -> SMAEResult:
    """Pre-train a BERT-style encoder with the Starbucks 2D Matryoshka MLM loss (AdamW).

    ``device="cuda"`` (the default) raises ``ValueError`` when CUDA is unavailable;
    ``device="cpu"`` is accepted only for a tiny config (hidden <= 128, layers <= 4).
    Batches cycle through ``texts`` in a seeded random order. Defaults of ``lr`` and
    ``weight_decay`` are the reference script's (which also uses ``mlm_probability=0.2``).
    ``mae=True`` adds the reference's MAE decoder term (:mod:`embedlab.training.smae_mae`:
    a second copy masked at 0.4, one decoder layer fed each pair's [CLS]); the decoder is
    returned as ``result.decoder``.
    """
    dev = check_choice("device", device.split(":")[0], ("cuda", "cpu"))
    cfg = config or SMAEConfig(vocab_size=tokenizer.vocab_size)
    if cfg.vocab_size < tokenizer.vocab_size:
        raise ValueError(
            f"config.vocab_size must be >= tokenizer.vocab_size={tokenizer.vocab_size}, "
            f"got {cfg.vocab_size}"
        )
    if dev == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}: {NO_GPU}; pass device='cpu' only with a tiny config")
    if dev == "cpu" and not cfg.tiny:
        raise ValueError(
            f"device='cpu' is allowed only for a tiny config (hidden <= {TINY_HIDDEN}, "
            f"layers <= {TINY_LAYERS}); got hidden={cfg.hidden}, layers={cfg.layers}. {NO_GPU}"
        )
    if len(texts) == 0:
        raise ValueError("texts must not be empty, got 0 texts")
    check_int("steps", steps, min_value=1)
    check_int("batch_size", batch_size, min_value=1)
    check_positive_float("lr", lr)
    check_positive_float("weight_decay", weight_decay, strict=False)
    use = list(pairs) if pairs is not None else default_pairs(cfg.layers, cfg.hidden)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    encoder = SMAEEncoder(cfg).to(device)
    head = MLMHead(cfg.hidden, cfg.vocab_size).to(device)
    decoder = None
    if mae:
        decoder = MAEDecoder(encoder).to(device)
    params = list(encoder.parameters()) + list(head.parameters())
    if decoder is not None:  # its embeddings are the encoder's: add only its own layer
        params += list(decoder.block.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    result = SMAEResult(encoder, head, use, decoder=decoder)
    mask = functools.partial(
        mask_tokens,
        mask_id=SimpleTokenizer.MASK,
        vocab_size=tokenizer.vocab_size,
        first_normal=len(SimpleTokenizer.SPECIALS),
        generator=gen,
    )
    order = torch.randperm(len(texts), generator=gen).tolist()
    per_epoch = max(1, math.ceil(len(texts) / batch_size))
    encoder.train()
    head.train()
    for step in range(steps):
        k = step % per_epoch
        chunk = [texts[i] for i in order[k * batch_size : (k + 1) * batch_size]]
        ids, attn = _batch(tokenizer, chunk, cfg.max_length, device)
        special = ids < len(SimpleTokenizer.SPECIALS)
        inputs, labels = mask(ids, special, probability=mlm_probability)
        states = encoder(inputs, attn)
        if decoder is None:
            loss = smae_loss(states, labels, head, use)
        else:
            dec_inputs, dec_labels = mask(ids, special, probability=DECODER_MLM_PROBABILITY)
            loss = smae_mae_loss(states, labels, head, use, decoder, dec_inputs, dec_labels, attn)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        result.losses.append(float(loss.detach()))
    encoder.eval()
    head.eval()
    return result
