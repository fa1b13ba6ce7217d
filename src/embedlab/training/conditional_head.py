"""Conditional cross-attention: one embedding per attribute from one backbone (CCA network).

A small CNN turns an image into a grid of tokens (its last feature map, one token per
position, plus a learned position embedding). Each attribute owns a learned condition
token that cross-attends (multi-head attention: the condition is the query, the image
tokens are keys and values) to those tokens; a shared MLP maps the attended vector to the
attribute's embedding. So the model returns ``(batch, n_attributes, dim)``, and
:meth:`ConditionalEmbedder.embed_aspects` gives ``{attribute: (n, dim)}``, which
:class:`embedlab.index.MultiAspectIndex` adds and searches directly. Training sums a metric
loss (supervised contrastive by default) over the attributes, each on its own embedding
with its own labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from embedlab._validation import check_int, check_positive_float
from embedlab.losses.supcon import SupConLoss

__all__ = ["ConditionalEmbedder", "ConvTokens", "CrossAttentionHead", "fit_conditional"]


class ConvTokens(nn.Module):
    """Two conv blocks; the ``(C, H/4, W/4)`` feature map as ``H*W/16`` tokens of size ``C``.

    Example:
        >>> ConvTokens(3, width=8)(torch.zeros(2, 3, 28, 28)).shape
        torch.Size([2, 49, 16])
    """

    def __init__(self, in_channels: int = 3, *, width: int = 16, image_size: int = 28) -> None:
        super().__init__()
        w = check_int("width", width, min_value=1)
        size = check_int("image_size", image_size, min_value=4)
        self.dim = 2 * w
        self.net = nn.Sequential(
            nn.Conv2d(check_int("in_channels", in_channels, min_value=1), w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.pos = nn.Parameter(0.02 * torch.randn((size // 4) ** 2, self.dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, C, H, W)`` -> ``(batch, tokens, dim)``."""
        fmap: torch.Tensor = self.net(x)
        tokens = fmap.flatten(2).transpose(1, 2)
        if tokens.shape[1] != self.pos.shape[0]:
            raise ValueError(
                f"x must be {int(self.pos.shape[0] ** 0.5) * 4} pixels square, got {tuple(x.shape)}"
            )
        return tokens + self.pos


class CrossAttentionHead(nn.Module):
    """Learned condition tokens cross-attend to backbone tokens: ``(B, T, d) -> (B, A, dim)``.

    Args:
        token_dim: size ``d`` of the backbone's tokens.
        n_conditions: number of attributes ``A`` (one learned query token each).
        dim: embedding size per attribute.
        heads: attention heads (must divide ``token_dim``).

    Example:
        >>> CrossAttentionHead(16, 3, 8)(torch.zeros(2, 49, 16)).shape
        torch.Size([2, 3, 8])
    """

    def __init__(self, token_dim: int, n_conditions: int, dim: int, *, heads: int = 2) -> None:
        super().__init__()
        d = check_int("token_dim", token_dim, min_value=1)
        h = check_int("heads", heads, min_value=1)
        if d % h:
            raise ValueError(f"heads must divide token_dim={d}, got {heads}")
        self.conditions = nn.Parameter(
            torch.randn(check_int("n_conditions", n_conditions, min_value=1), d)
        )
        self.attn = nn.MultiheadAttention(d, h, batch_first=True)
        self.norm = nn.LayerNorm(d)
        out = check_int("dim", dim, min_value=1)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(), nn.Linear(2 * d, out))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(batch, tokens, token_dim)`` -> ``(batch, n_conditions, dim)``."""
        if tokens.dim() != 3 or tokens.shape[2] != self.conditions.shape[1]:
            raise ValueError(
                f"tokens must have shape (batch, tokens, {self.conditions.shape[1]}), "
                f"got {tuple(tokens.shape)}"
            )
        q = self.conditions.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        attended, _ = self.attn(q, tokens, tokens, need_weights=False)
        out: torch.Tensor = self.mlp(self.norm(attended + q))
        return out


class ConditionalEmbedder(nn.Module):
    """Backbone tokens + :class:`CrossAttentionHead`: one embedding per named attribute.

    Args:
        attributes: attribute names, in order (e.g. ``["digit", "colour", "background"]``).
        dim: embedding size per attribute.
        in_channels, width, image_size: of the :class:`ConvTokens` backbone.
        heads: attention heads.
        seed: weight initialisation.

    Example:
        >>> m = ConditionalEmbedder(["digit", "colour"], dim=8, width=8)
        >>> {k: v.shape for k, v in m.embed_aspects(torch.zeros(3, 3, 28, 28)).items()}
        {'digit': (3, 8), 'colour': (3, 8)}
    """

    def __init__(
        self,
        attributes: Sequence[str],
        *,
        dim: int = 32,
        in_channels: int = 3,
        width: int = 16,
        image_size: int = 28,
        heads: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        names = [str(a) for a in attributes] if not isinstance(attributes, str) else []
        if not names or len(set(names)) != len(names):
            raise ValueError(f"attributes must be distinct names, at least one, got {attributes!r}")
        self.attributes = names
        self.dim = check_int("dim", dim, min_value=1)
        state = torch.random.get_rng_state()
        torch.manual_seed(check_int("seed", seed, min_value=0))
        self.backbone = ConvTokens(in_channels, width=width, image_size=image_size)
        self.head = CrossAttentionHead(self.backbone.dim, len(names), self.dim, heads=heads)
        torch.random.set_rng_state(state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, C, H, W)`` -> ``(batch, n_attributes, dim)``."""
        out: torch.Tensor = self.head(self.backbone(x))
        return out

    def embed_aspects(self, x: torch.Tensor, *, batch_size: int = 512) -> dict[str, np.ndarray]:
        """``{attribute: (n, dim) float32}``: the input of ``MultiAspectIndex.add`` / ``search``."""
        bs = check_int("batch_size", batch_size, min_value=1)
        was = self.training
        self.eval()
        with torch.no_grad():
            z = torch.cat([self(x[i : i + bs]) for i in range(0, x.shape[0], bs)])
        self.train(was)
        return {a: z[:, i].numpy().astype(np.float32) for i, a in enumerate(self.attributes)}


def fit_conditional(
    model: ConditionalEmbedder,
    x: torch.Tensor,
    labels: Mapping[str, np.ndarray | torch.Tensor],
    *,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 2e-3,
    loss: nn.Module | None = None,
    seed: int = 0,
) -> list[float]:
    """Train with one metric loss per attribute (its embedding, its labels), summed; Adam.

    Args:
        model: the :class:`ConditionalEmbedder`.
        x: ``(n, C, H, W)`` images.
        labels: ``{attribute: (n,) int labels}`` for every attribute of the model.
        epochs, batch_size, lr, seed: optimisation.
        loss: a ``loss(embeddings, labels)`` module; default ``SupConLoss(temperature=0.1)``.

    Returns:
        the mean loss of each epoch.
    """
    if not isinstance(model, ConditionalEmbedder):
        raise TypeError(f"model must be a ConditionalEmbedder, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a (n, C, H, W) tensor, got {getattr(x, 'shape', x)!r}")
    missing = [a for a in model.attributes if a not in labels]
    if missing:
        raise ValueError(f"labels must give every attribute of the model; missing {missing}")
    n = x.shape[0]
    ys = []
    for a in model.attributes:
        y = torch.as_tensor(np.asarray(labels[a])).long()
        if y.shape != (n,):
            raise ValueError(f"labels[{a!r}] must have shape ({n},), got {tuple(y.shape)}")
        ys.append(y)
    n_epochs = check_int("epochs", epochs, min_value=1)
    bs = check_int("batch_size", batch_size, min_value=2)
    loss_fn = loss if loss is not None else SupConLoss(temperature=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=check_positive_float("lr", lr))
    gen = torch.Generator().manual_seed(check_int("seed", seed, min_value=0))
    history: list[float] = []
    model.train()
    for _ in range(n_epochs):
        order = torch.randperm(n, generator=gen)
        total, steps = 0.0, 0
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            if idx.numel() < 2:
                continue
            z = model(x[idx])
            value = torch.stack([loss_fn(z[:, i], y[idx]) for i, y in enumerate(ys)]).sum()
            opt.zero_grad()
            value.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(value.detach())
            steps += 1
        history.append(total / max(steps, 1))
    model.eval()
    return history
