"""``nn.Embedding`` / ``nn.EmbeddingBag``-shaped wrappers over any compressed table method."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from embedlab._validation import check_choice, check_int
from embedlab.fields import Field
from embedlab.tables._base import EmbeddingTable
from embedlab.tables._phases import PhaseContext
from embedlab.tables._registry import make_table

__all__ = ["CompressedEmbedding", "CompressedEmbeddingBag"]

BagMode = Literal["sum", "mean", "max"]


class CompressedEmbedding(nn.Module):
    """A drop-in for ``nn.Embedding(num_embeddings, embedding_dim)`` backed by a compressed table.

    One field of ``num_embeddings`` ids, stored by ``method`` (any registered table, e.g.
    ``"qr"``, ``"hash"``, ``"tt"``) within ``full_bytes / compression``. Ids of any shape
    are looked up; an id outside ``[0, num_embeddings)`` raises, naming the bad value.
    ``padding_idx`` reads exactly zero and gets no gradient. Multi-phase methods (``pep``,
    ``dpq``, ...) need their phases driven (``start_phase`` / ``end_phase``, as the
    trainer does); :meth:`regularization` and :meth:`on_step` forward the table's hooks.

    Args:
        num_embeddings: number of ids.
        embedding_dim: size of each vector.
        method: registered table name or spec string (``"qr(op=add)"``).
        compression: the table uses at most ``num_embeddings * embedding_dim * 4 / compression``
            bytes (``1`` for ``method="full"``).
        padding_idx: an id whose vector is zero, or None.
        seed: seeds the table.
        **method_kwargs: hyper-parameters of the method.

    Shapes:
        ids ``(*)`` int64 / int32 -> ``(*, embedding_dim)`` float32.

    Example:
        >>> import torch
        >>> emb = CompressedEmbedding(10_000, 16, method="qr", compression=100, padding_idx=0)
        >>> emb(torch.tensor([[0, 5, 9999]])).shape
        torch.Size([1, 3, 16])
        >>> emb.memory_bytes() <= 10_000 * 16 * 4 // 100
        True
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        method: str = "qr",
        compression: float = 100,
        padding_idx: int | None = None,
        seed: int = 0,
        **method_kwargs: Any,
    ) -> None:
        super().__init__()
        self.num_embeddings = check_int("num_embeddings", num_embeddings, min_value=1)
        self.embedding_dim = check_int("embedding_dim", embedding_dim, min_value=1)
        if padding_idx is not None:
            padding_idx = check_int("padding_idx", padding_idx, min_value=-self.num_embeddings)
            if padding_idx >= self.num_embeddings:
                raise ValueError(
                    f"padding_idx must be in [-{self.num_embeddings}, {self.num_embeddings}), "
                    f"got {padding_idx}"
                )
            padding_idx %= self.num_embeddings  # torch's convention for negative indices
        self.padding_idx = padding_idx
        self.table: EmbeddingTable = make_table(
            method,
            [Field("ids", self.num_embeddings)],
            self.embedding_dim,
            compression=compression,
            seed=seed,
            **method_kwargs,
        ).set_validation(False)  # checked here, with a message about num_embeddings
        self.validate_ids = True

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """``(n,)`` ids -> ``(n, embedding_dim)``, padding rows zero."""
        if self.validate_ids:
            _check_ids(ids, self.num_embeddings)
        flat = ids.reshape(-1).to(torch.int64)
        out: torch.Tensor = self.table(flat.unsqueeze(1)).squeeze(1)  # (n, dim)
        if self.padding_idx is not None:
            out = torch.where((flat == self.padding_idx).unsqueeze(1), torch.zeros_like(out), out)
        return out

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lookup(ids).reshape(*ids.shape, self.embedding_dim)

    # --- the table's protocol -------------------------------------------------
    @property
    def phases(self) -> tuple[str, ...]:
        """The table's training phases (see :attr:`EmbeddingTable.phases`)."""
        return self.table.phases

    def start_phase(self, phase: str, ctx: PhaseContext) -> None:
        """Called before phase ``phase`` trains; forwarded to the table."""
        self.table.start_phase(phase, ctx)

    def end_phase(self, phase: str, ctx: PhaseContext) -> None:
        """Called after phase ``phase`` trained; forwarded to the table."""
        self.table.end_phase(phase, ctx)

    def on_step(self, step: int) -> None:
        """Called by the trainer after every optimizer step; forwarded to the table."""
        self.table.on_step(step)

    def regularization(self) -> torch.Tensor:
        """The table's extra loss term (zero for most methods)."""
        return self.table.regularization()

    def memory_bytes(self) -> int:
        """The table's bytes at inference (see :meth:`EmbeddingTable.memory_bytes`)."""
        return self.table.memory_bytes()

    def export(self, path: str | os.PathLike[str]) -> Path:
        """Export the table (one field named ``"ids"``); see :meth:`EmbeddingTable.export`."""
        return self.table.export(path)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}, method={self.table.name!r}{pad}"


class CompressedEmbeddingBag(CompressedEmbedding):
    """A drop-in for ``nn.EmbeddingBag`` backed by a compressed table.

    Bags are reduced exactly as ``torch.nn.functional.embedding_bag`` does (the looked-up
    vectors are handed to it): ``mode`` ``"sum"``, ``"mean"`` or ``"max"``; 2-D ``input``
    (one bag per row) or 1-D ``input`` with ``offsets`` (``include_last_offset`` as in
    torch); ``per_sample_weights`` only with ``"sum"``; ``padding_idx`` entries are left
    out of every bag (and of the mean's count); an empty bag reads zeros.

    Args:
        num_embeddings, embedding_dim, method, compression, padding_idx, seed,
            **method_kwargs: as :class:`CompressedEmbedding`.
        mode: how a bag is reduced.
        include_last_offset: ``offsets`` has one more entry, the end of the last bag.

    Shapes:
        input ``(bags, n)`` or ``(n,)`` with offsets ``(bags,)`` (``(bags + 1,)`` with
        ``include_last_offset``); per_sample_weights like ``input`` -> ``(bags, embedding_dim)``.

    Example:
        >>> import torch
        >>> bag = CompressedEmbeddingBag(1000, 8, method="hash", compression=10, mode="sum")
        >>> bag(torch.tensor([1, 2, 4, 5, 4]), torch.tensor([0, 2])).shape
        torch.Size([2, 8])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        method: str = "qr",
        compression: float = 100,
        mode: BagMode = "mean",
        padding_idx: int | None = None,
        include_last_offset: bool = False,
        seed: int = 0,
        **method_kwargs: Any,
    ) -> None:
        super().__init__(
            num_embeddings,
            embedding_dim,
            method=method,
            compression=compression,
            padding_idx=padding_idx,
            seed=seed,
            **method_kwargs,
        )
        self.mode: BagMode = check_choice("mode", mode, ("sum", "mean", "max"))  # type: ignore[assignment]
        self.include_last_offset = bool(include_last_offset)

    def forward(  # type: ignore[override]
        self,
        input: torch.Tensor,
        offsets: torch.Tensor | None = None,
        per_sample_weights: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if input.dim() not in (1, 2):
            raise ValueError(
                f"input must be 1-D (with offsets) or 2-D, got shape {tuple(input.shape)}"
            )
        if input.dim() == 2 and offsets is not None:
            raise ValueError("offsets must be None for 2-D input (every row is one bag)")
        if input.dim() == 1 and offsets is None:
            raise ValueError("offsets must be given for 1-D input")
        flat = input.reshape(-1).to(torch.int64)
        vectors = self.lookup(flat)  # (n, dim)
        index = torch.arange(flat.shape[0], device=flat.device)
        weight, pad_row = vectors, None
        if self.padding_idx is not None:
            # One extra zero row stands for the padding entries, which torch then leaves out
            # (and of the mean's count). Without padding torch takes the same path as
            # nn.EmbeddingBag (a padding_idx switches kernels, whose roundings differ).
            pad_row = flat.shape[0]
            index = torch.where(flat == self.padding_idx, pad_row, index)
            weight = torch.cat([vectors, vectors.new_zeros(1, self.embedding_dim)])
        if input.dim() == 2:
            index = index.reshape(input.shape)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(index.shape)
        return nn.functional.embedding_bag(
            index,
            weight,
            offsets,
            mode=self.mode,
            per_sample_weights=per_sample_weights,
            include_last_offset=self.include_last_offset,
            padding_idx=pad_row,
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, mode={self.mode!r}"


def _check_ids(ids: torch.Tensor, num_embeddings: int) -> None:
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"ids must be a torch.Tensor, got {type(ids).__name__}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"ids must be an int64 or int32 tensor, got dtype {ids.dtype}")
    if ids.numel():
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= num_embeddings:
            bad = lo if lo < 0 else hi
            raise ValueError(f"ids must be in [0, num_embeddings={num_embeddings}), got {bad}")
