"""CLHE: Contrastive Learning-enhanced Hierarchical Encoder for bundle construction
(Ma, Liu, Wei, Tao, Wang, Chua, 2024, "Leveraging Multimodal Features and Item-level User
Feedback for Bundle Construction").

Hierarchy: an item encoder fuses each item's feature tokens (a content feature, here the
MiniLM text vector through an MLP, and a learned ID embedding) by self-attention; a bundle
transformer encodes the given items of a partial bundle; the bundle vector scores every
item (a second item encoder of the same form, as the reference's "decoder"). Losses: the
completion loss over all items, item-level InfoNCE between two feature-token-dropout views
of each item in the batch, and bundle-level InfoNCE between two item-dropout views of each
partial bundle.

Differences from the reference code (github.com/Xiaohao-Liu/CLHE): no user-item CF token
(there is no separate user-feedback matrix here); training feeds a random half of each
bundle and asks for the rest (the reference feeds the whole bundle and reconstructs it);
the bundle transformer's layers are registered and trained (the reference keeps them in a
plain list, so they stay at their random initial weights); bundle CL compares two
augmented views (the reference: the clean bundle and one augmented view).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from embedlab._validation import (
    check_choice,
    check_int,
    check_positive_float,
    check_probability,
)
from embedlab.bundle.losses import completion_loss, info_nce

__all__ = ["CLHE", "BundleLosses"]

Fusion = Literal["attention", "mean"]
Pooling = Literal["transformer", "mean"]


class _ItemEncoder(nn.Module):
    """Item vectors ``(n_items, dim)`` from the feature tokens [content MLP, ID embedding]."""

    def __init__(self, features: torch.Tensor, dim: int, hidden: int, fusion: str) -> None:
        super().__init__()
        self.register_buffer("features", F.normalize(features, dim=-1))
        self.content = nn.Sequential(
            nn.Linear(features.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )
        self.ids = nn.Embedding(features.shape[0], dim)
        nn.init.normal_(self.ids.weight, std=dim**-0.5)
        self.fusion = fusion
        self.ln = nn.LayerNorm(dim, elementwise_affine=False)
        self.w_q = nn.Linear(dim, dim, bias=False)
        self.w_k = nn.Linear(dim, dim, bias=False)
        self.w_v = nn.Linear(dim, dim, bias=False)

    def tokens(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """``(n, n_tokens=2, dim)`` L2-normalised feature tokens of items ``ids`` (all: None)."""
        feats = self.features
        assert isinstance(feats, torch.Tensor)
        if ids is None:
            toks = torch.stack([self.content(feats), self.ids.weight], dim=1)
        else:
            toks = torch.stack([self.content(feats[ids]), self.ids(ids)], dim=1)
        return F.normalize(toks, dim=-1)

    def fuse(self, toks: torch.Tensor) -> torch.Tensor:
        """``(n, n_tokens, dim)`` -> ``(n, dim)``: self-attention over tokens, mean-pooled."""
        if self.fusion == "mean":
            return toks.mean(dim=1)
        x = self.ln(toks)
        att = (self.w_q(x) @ self.w_k(x).transpose(1, 2)) * x.shape[-1] ** -0.5
        fused: torch.Tensor = (att.softmax(dim=-1) @ self.w_v(x)).mean(dim=1)
        return fused

    def forward(self, ids: torch.Tensor | None = None, token_dropout: float = 0.0) -> torch.Tensor:
        """``(n, dim)`` vectors of items ``ids`` (``(n,)`` int64; None: all items);
        ``token_dropout`` zeros each token with that probability, keeping at least one per
        item (the item-level augmentation)."""
        toks = self.tokens(ids)
        if token_dropout > 0:
            keep = torch.rand(toks.shape[:2]) >= token_dropout
            none = ~keep.any(dim=1)
            keep[none, torch.randint(toks.shape[1], (int(none.sum()),))] = True
            toks = toks * keep.unsqueeze(-1)
        return self.fuse(toks)


class _AttentionLayer(nn.Module):
    """One pre-norm single-head masked self-attention layer with a residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(dim, elementwise_affine=False)
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x (batch, n_tok, dim)``, ``mask (batch, n_tok)`` -> ``(batch, n_tok, dim)``."""
        h = self.ln(x)
        att = (self.q(h) @ self.k(h).transpose(1, 2)) * x.shape[-1] ** -0.5
        att = att.masked_fill(~mask.unsqueeze(1), float("-inf")).softmax(dim=-1)
        out: torch.Tensor = x + att @ self.v(h)
        return out


class _BundleEncoder(nn.Module):
    """Self-attention layers over the given items, then a masked mean pool."""

    def __init__(self, dim: int, n_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([_AttentionLayer(dim) for _ in range(n_layers)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x (batch, n_tok, dim)`` and ``mask (batch, n_tok)`` (True on real items) ->
        ``(batch, dim)``."""
        for layer in self.layers:
            x = layer(x, mask)
        m = mask.unsqueeze(-1).to(x.dtype)
        return (x * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


class BundleLosses(dict[str, torch.Tensor]):
    """``{"loss", "main", "item_cl", "bundle_cl"}``; ``loss`` is the weighted total."""


class CLHE(nn.Module):
    """Hierarchical item / bundle encoder with item- and bundle-level contrastive losses.

    Args:
        item_features: ``(n_items, d)`` content features (e.g. MiniLM text vectors).
        dim: width of item and bundle vectors.
        hidden: width of the content MLP's hidden layer.
        n_layers: bundle transformer layers.
        fusion: ``"attention"`` (self-attention over an item's feature tokens) or
            ``"mean"`` (their average).
        pooling: ``"transformer"`` (the bundle transformer) or ``"mean"`` (average of the
            given items' vectors).
        item_cl_weight: weight of the item-level InfoNCE (0 switches it off).
        bundle_cl_weight: weight of the bundle-level InfoNCE (0 switches it off).
        item_temperature: temperature of the item-level InfoNCE.
        bundle_temperature: temperature of the bundle-level InfoNCE.
        token_dropout: probability of dropping a feature token in an item view.
        item_dropout: probability of dropping a given item in a bundle view.

    Example:
        >>> model = CLHE(torch.randn(10, 8), dim=4, hidden=8)
        >>> model.scores(torch.tensor([[0, 1], [2, -1]])).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        item_features: torch.Tensor,
        *,
        dim: int = 64,
        hidden: int = 256,
        n_layers: int = 1,
        fusion: Fusion = "attention",
        pooling: Pooling = "transformer",
        item_cl_weight: float = 0.1,
        bundle_cl_weight: float = 0.5,
        item_temperature: float = 0.5,
        bundle_temperature: float = 0.2,
        token_dropout: float = 0.2,
        item_dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if not isinstance(item_features, torch.Tensor):
            raise TypeError(
                f"item_features must be a torch.Tensor, got {type(item_features).__name__}"
            )
        if item_features.ndim != 2 or 0 in item_features.shape:
            raise ValueError(
                "item_features must be a non-empty (n_items, d) matrix, "
                f"got shape {tuple(item_features.shape)}"
            )
        self.item_cl_weight = check_positive_float("item_cl_weight", item_cl_weight, strict=False)
        self.bundle_cl_weight = check_positive_float(
            "bundle_cl_weight", bundle_cl_weight, strict=False
        )
        self.item_temperature = check_positive_float("item_temperature", item_temperature)
        self.bundle_temperature = check_positive_float("bundle_temperature", bundle_temperature)
        self.token_dropout = check_probability("token_dropout", token_dropout)
        self.item_dropout = check_probability("item_dropout", item_dropout)
        self.hparams: dict[str, float | int | str] = {
            "dim": check_int("dim", dim, min_value=1),
            "hidden": check_int("hidden", hidden, min_value=1),
            "n_layers": check_int("n_layers", n_layers, min_value=1),
            "fusion": check_choice("fusion", fusion, ("attention", "mean")),
            "pooling": check_choice("pooling", pooling, ("transformer", "mean")),
            "item_cl_weight": self.item_cl_weight,
            "bundle_cl_weight": self.bundle_cl_weight,
            "item_temperature": self.item_temperature,
            "bundle_temperature": self.bundle_temperature,
            "token_dropout": self.token_dropout,
            "item_dropout": self.item_dropout,
        }
        feats = item_features.detach().float()
        self.n_items = int(feats.shape[0])
        self.encoder = _ItemEncoder(feats, dim, hidden, fusion)  # items inside the bundle
        self.decoder = _ItemEncoder(feats, dim, hidden, fusion)  # candidate items
        self.bundle = _BundleEncoder(dim, n_layers) if pooling == "transformer" else None
        self.projector = nn.Linear(dim, dim)

    def hyper_parameters(self) -> dict[str, float | int | str]:
        """The constructor's hyper-parameters (for benchmark records)."""
        return dict(self.hparams)

    def _check_given(self, given: torch.Tensor) -> torch.Tensor:
        if not isinstance(given, torch.Tensor) or given.ndim != 2 or given.shape[1] == 0:
            shape = tuple(given.shape) if isinstance(given, torch.Tensor) else type(given).__name__
            raise ValueError(f"given must be (batch, max_len) item ids padded with -1, got {shape}")
        if given.min() < -1 or given.max() >= self.n_items:
            raise ValueError(f"given ids must be in [0, {self.n_items}) or -1 (padding)")
        if not bool((given >= 0).any(dim=1).all()):
            raise ValueError("given must hold at least one item per bundle, got an empty row")
        return given.long()

    def encode_bundles(self, given: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """``(batch, dim)`` vectors of the partial bundles ``given`` (``-1`` padding);
        ``x`` the ``(batch, max_len, dim)`` item vectors at those positions, if computed."""
        given = self._check_given(given)
        if x is None:
            x = self._given_items(given)
        mask = given >= 0
        x = x * mask.unsqueeze(-1)
        if self.bundle is None:
            m = mask.unsqueeze(-1).to(x.dtype)
            return (x * m).sum(dim=1) / m.sum(dim=1)
        pooled: torch.Tensor = self.bundle(x, mask)
        return pooled

    def _given_items(self, given: torch.Tensor) -> torch.Tensor:
        """``(batch, max_len, dim)`` encoder vectors of the given items (padding: item 0)."""
        flat = given.clamp(min=0).flatten()
        vecs: torch.Tensor = self.encoder(flat)
        return vecs.view(*given.shape, -1)

    def scores(self, given: torch.Tensor) -> torch.Tensor:
        """``(batch, n_items)`` completion scores of every item (given items not masked)."""
        items: torch.Tensor = self.decoder()
        return self.encode_bundles(given) @ items.T

    def _drop_items(self, given: torch.Tensor) -> torch.Tensor:
        real = given >= 0
        keep = real & (torch.rand(given.shape) >= self.item_dropout)
        lost = ~keep.any(dim=1)  # keep the first item of a bundle that lost all
        keep[lost, 0] = True
        return torch.where(keep, given, torch.full_like(given, -1))

    def losses(self, given: torch.Tensor, targets: torch.Tensor) -> BundleLosses:
        """The training losses for partial bundles ``given`` completed by ``targets``.

        Args:
            given: ``(batch, n_given)`` item ids, ``-1`` padding.
            targets: ``(batch, n_targets)`` item ids to complete, ``-1`` padding.
        """
        given = self._check_given(given)
        if (
            not isinstance(targets, torch.Tensor)
            or targets.ndim != 2
            or targets.shape[0] != given.shape[0]
        ):
            shape = (
                tuple(targets.shape)
                if isinstance(targets, torch.Tensor)
                else type(targets).__name__
            )
            raise ValueError(
                f"targets must be (batch={given.shape[0]}, max_len) item ids, got {shape}"
            )
        x = self._given_items(given)
        logits = self.encode_bundles(given, x) @ self.decoder().T
        main = completion_loss(logits, given, targets)
        zero = logits.new_zeros(())
        item_cl, bundle_cl = zero, zero
        if self.item_cl_weight > 0:
            ids = torch.unique(torch.cat([given.flatten(), targets.flatten()]))
            ids = ids[ids >= 0]
            p = self.token_dropout
            a = self.projector(self.encoder(ids, p))
            b = self.projector(self.encoder(ids, p))
            item_cl = info_nce(a, b, self.item_temperature)
        if self.bundle_cl_weight > 0 and given.shape[0] > 1:
            a = self.encode_bundles(self._drop_items(given), x)
            b = self.encode_bundles(self._drop_items(given), x)
            bundle_cl = info_nce(a, b, self.bundle_temperature)
        total = main + self.item_cl_weight * item_cl
        total = total + self.bundle_cl_weight * bundle_cl
        out = BundleLosses(loss=total, main=main, item_cl=item_cl, bundle_cl=bundle_cl)
        return out
