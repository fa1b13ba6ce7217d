"""Starbucks 2D Matryoshka MLM pre-training (SMAE's MLM half) on DBpedia texts; GPU only.

Pre-trains a BERT-style encoder from scratch with :func:`embedlab.training.smae.pretrain_smae`
on the beir-mini DBpedia corpus (title + text; the last ``--holdout`` documents held out),
word-level vocabulary built from the training documents, then prints each (layer, dim)
pair's masked-LM loss on the held-out documents before and after training.

Without CUDA it prints ``skipped: no GPU`` and exits 0 (the model is BERT-size by default;
CPU runs are for the tiny configs of the tests only).

Run: ``PYTHONPATH=src python benchmarks/smae_pretrain.py [--steps 3000] [--hidden 768]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from embedlab.training.smae import (
    MLMHead,
    SimpleTokenizer,
    SMAEConfig,
    SMAEEncoder,
    mask_tokens,
    pretrain_smae,
    smae_loss,
)


def load_texts(folder: Path) -> list[str]:
    """``title. text`` of every corpus row."""
    with (folder / "corpus.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [f"{r.get('title', '')}. {r.get('text', '')}" for r in rows]


@torch.no_grad()
def held_out_losses(
    encoder: SMAEEncoder,
    head: MLMHead,
    tok: SimpleTokenizer,
    texts: list[str],
    pairs: list[tuple[int, int]],
    max_length: int,
) -> list[float]:
    """Per-pair MLM loss on ``texts`` with a fixed seeded masking (same masks every call)."""
    gen = torch.Generator().manual_seed(1234)
    dev = next(encoder.parameters()).device
    sums = [0.0] * len(pairs)
    batches = 0
    for k in range(0, len(texts), 64):
        rows = [tok.encode(t, max_length) for t in texts[k : k + 64]]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), tok.PAD, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        ids = ids.to(dev)
        inputs, labels = mask_tokens(
            ids,
            ids < len(tok.SPECIALS),
            mask_id=tok.MASK,
            vocab_size=tok.vocab_size,
            first_normal=len(tok.SPECIALS),
            generator=gen,
        )
        states = encoder(inputs, (ids != tok.PAD).long())
        for j, pair in enumerate(pairs):
            sums[j] += float(smae_loss(states, labels, head, [pair]))
        batches += 1
    return [s / batches for s in sums]


def main() -> None:
    """Pre-train and print the per-pair held-out MLM losses."""
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="../shared/data/beir-mini/dbpedia")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--hidden", type=int, default=768)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--vocab", type=int, default=30000)
    p.add_argument("--holdout", type=int, default=500)
    p.add_argument("--mae", action="store_true", help="add the MAE-decoder term (SMAE)")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("skipped: no GPU (SMAE pre-training needs device='cuda')")
        sys.exit(0)
    folder = Path(args.data)
    if not (folder / "corpus.jsonl").exists():
        print(f"skipped: {folder}/corpus.jsonl not found")
        sys.exit(0)
    texts = load_texts(folder)
    train, held = texts[: -args.holdout], texts[-args.holdout :]
    tok = SimpleTokenizer.from_texts(train, max_vocab=args.vocab)
    cfg = SMAEConfig(
        tok.vocab_size,
        hidden=args.hidden,
        layers=args.layers,
        heads=args.heads,
        ffn=4 * args.hidden,
        max_length=args.max_length,
    )
    t0 = time.perf_counter()
    res = pretrain_smae(
        train,
        tok,
        config=cfg,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        mae=args.mae,
    )
    secs = time.perf_counter() - t0
    torch.manual_seed(0)
    fresh_enc = SMAEEncoder(cfg).to("cuda").eval()
    fresh_head = MLMHead(cfg.hidden, cfg.vocab_size).to("cuda").eval()
    before = held_out_losses(fresh_enc, fresh_head, tok, held, res.pairs, cfg.max_length)
    after = held_out_losses(res.encoder, res.head, tok, held, res.pairs, cfg.max_length)
    print(
        f"{len(train)} train / {len(held)} held-out docs, vocab {tok.vocab_size}, "
        f"{args.steps} steps x {args.batch_size}, {secs:.0f} s"
    )
    print("layer  dim  held-out MLM loss (init -> trained)")
    for (layer, dim), b, a in zip(res.pairs, before, after, strict=True):
        print(f"{layer:5d} {dim:4d}  {b:.3f} -> {a:.3f}")


if __name__ == "__main__":
    main()
