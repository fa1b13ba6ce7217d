"""The MAE term of Starbucks' SMAE pre-training: a one-layer decoder fed the sub-model's [CLS].

Zhuang et al., "Starbucks", 2024, reference code ielab/Starbucks (``smae/modelling.py``,
``BertFor2DMaekMatryoshkaMaskedLM``; ``pretrain_smae.sh``: ``--decoder_mlm_probability 0.4``).
For each (layer ``l``, dim ``d``) pair, the [CLS] hidden state of layer ``l`` truncated to its
first ``d`` coordinates goes through the shared MLM head's transform (the dense layer cut to
``d`` input columns, GELU, LayerNorm) and replaces the first token embedding of a second,
more heavily masked copy of the input; one Transformer layer, sharing the encoder's
embeddings and the MLM head, must reconstruct that copy. Per pair the reference averages the
MLM and MAE cross-entropies 1:1, then averages over pairs; so :func:`smae_mae_loss` is
``(smae_loss + mean_pairs mae) / 2``.

Difference from the reference: its decoder layer starts as a copy of the pre-trained model's
first layer (``from_pretrained``); ours starts from random weights, like the encoder here.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from embedlab.training._smae_model import IGNORE, MLMHead, SMAEEncoder, smae_loss

__all__ = ["DECODER_MLM_PROBABILITY", "MAEDecoder", "mae_term", "smae_mae_loss"]

#: the reference script's masking rate of the decoder's copy
DECODER_MLM_PROBABILITY = 0.4


class MAEDecoder(nn.Module):
    """One Transformer layer over the encoder's embeddings of the decoder input, whose first
    position is replaced by a given vector (the transformed, truncated [CLS])."""

    def __init__(self, encoder: SMAEEncoder) -> None:
        super().__init__()
        cfg = encoder.config
        # shared with the encoder (the same modules, so the same parameters)
        self.tokens, self.positions, self.norm = encoder.tokens, encoder.positions, encoder.norm
        self.drop = nn.Dropout(cfg.dropout)
        self.block = nn.TransformerEncoderLayer(
            cfg.hidden,
            cfg.heads,
            cfg.ffn,
            cfg.dropout,
            activation="gelu",
            batch_first=True,
            layer_norm_eps=1e-12,
        )

    def forward(
        self, first: torch.Tensor, ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Hidden states ``(batch, seq, hidden)``; ``first`` ``(batch, hidden)`` replaces
        position 0's embedding."""
        pos = torch.arange(ids.shape[1], device=ids.device)
        emb = self.drop(self.norm(self.tokens(ids) + self.positions(pos)))
        emb = torch.cat([first.unsqueeze(1), emb[:, 1:]], dim=1)
        out: torch.Tensor = self.block(emb, src_key_padding_mask=~attention_mask.bool())
        return out


def mae_term(
    hidden: torch.Tensor,
    dim: int,
    head: MLMHead,
    decoder: MAEDecoder,
    decoder_inputs: torch.Tensor,
    decoder_labels: torch.Tensor,
    attention_mask: torch.Tensor,
) -> torch.Tensor:
    """The MAE cross-entropy of one pair: ``hidden`` is the layer's ``(batch, seq, hidden)``
    states, of which the [CLS] row's first ``dim`` coordinates feed the decoder."""
    if not 1 <= dim <= hidden.shape[-1]:
        raise ValueError(f"dim must be in [1, {hidden.shape[-1]}], got {dim}")
    first = head.transform(hidden[:, 0, :dim])
    logits = head(decoder(first, decoder_inputs, attention_mask))
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), decoder_labels.reshape(-1), ignore_index=IGNORE
    )


def smae_mae_loss(
    hidden_states: Sequence[torch.Tensor],
    labels: torch.Tensor,
    head: MLMHead,
    pairs: Sequence[tuple[int, int]],
    decoder: MAEDecoder,
    decoder_inputs: torch.Tensor,
    decoder_labels: torch.Tensor,
    attention_mask: torch.Tensor,
) -> torch.Tensor:
    """Mean over ``pairs`` of ``(MLM_pair + MAE_pair) / 2`` (the reference's SMAE loss).

    ``decoder_inputs`` / ``decoder_labels`` are the second masked copy of the batch
    (:data:`DECODER_MLM_PROBABILITY`), labels ``-100`` where not masked.
    """
    if not bool((decoder_labels != IGNORE).any()):
        raise ValueError("decoder_labels must have at least one masked position (!= -100)")
    mlm = smae_loss(hidden_states, labels, head, pairs)  # checks pairs and labels
    mae = torch.stack(
        [
            mae_term(
                hidden_states[layer],
                dim,
                head,
                decoder,
                decoder_inputs,
                decoder_labels,
                attention_mask,
            )
            for layer, dim in pairs
        ]
    ).mean()
    return (mlm + mae) / 2
