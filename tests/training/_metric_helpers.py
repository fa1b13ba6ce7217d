"""A tiny supervised-contrastive loss and a views variant, local to the tests."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class TinySupCon(nn.Module):
    """Supervised contrastive loss (Khosla et al. 2020) on L2-normalised embeddings."""

    input_kind: ClassVar[str] = "labels"

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z = nn.functional.normalize(emb, dim=1)
        sim = z @ z.T / self.temperature
        eye = torch.eye(len(z), dtype=torch.bool)
        sim = sim.masked_fill(eye, -1e9)
        pos = (labels[:, None] == labels[None, :]) & ~eye
        log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
        n_pos = pos.sum(1).clamp(min=1)
        return -((log_prob * pos).sum(1) / n_pos).mean()


class TinyViews(TinySupCon):
    input_kind: ClassVar[str] = "views"

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        b, v, d = emb.shape
        return super().forward(emb.reshape(b * v, d), labels.repeat_interleave(v))


class TinyPairs(nn.Module):
    input_kind: ClassVar[str] = "pairs"

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        za, zb = nn.functional.normalize(a, dim=1), nn.functional.normalize(b, dim=1)
        logits = za @ zb.T / 0.1
        return nn.functional.cross_entropy(logits, torch.arange(len(a)))
