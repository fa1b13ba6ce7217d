"""Bridges to other libraries' training loops.

- :class:`SentenceTransformerLoss` (in :mod:`embedlab.bridges.sentence_transformers_loss`):
  any embedlab loss as a ``SentenceTransformerTrainer`` loss.
- pytorch-metric-learning miners are accepted directly by the losses that take a
  ``miner=`` (see :class:`embedlab.losses.PMLMiner`).
"""

from __future__ import annotations

from embedlab.bridges.sentence_transformers_loss import SentenceTransformerLoss

__all__ = ["SentenceTransformerLoss"]
