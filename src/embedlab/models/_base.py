"""The CTR-model base class: a head on top of an injected embedding table."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import ClassVar

import torch
from torch import nn

from embedlab._validation import check_int, check_int_in_range
from embedlab.tables import EmbeddingTable

__all__ = ["CTRModel", "make_mlp"]


class CTRModel(nn.Module):
    """Base of every CTR model: ``logits = head(table(ids), dense)``.

    The table is injected, so every model works with every table
    (``dim = table.dim``, ``n_fields = table.n_fields``).

    **The table holds every per-id parameter.** Classic CTR models keep a
    second, scalar-per-id table for their first-order ("linear") term. Here that
    term is a learned linear read-out of each field's embedding,
    ``bias + sum_j <w_j, e_j>`` with one weight vector ``w_j`` of size ``dim``
    per field (``linear_weight``, shape ``(n_fields, dim)``). Every id-indexed
    byte therefore lives in the table, and a table's compression budget covers
    all id storage; the model only adds dense, id-independent parameters
    (reported by :meth:`dense_params_bytes`).

    Dense (numeric) features, when ``n_dense > 0``, enter through a linear term
    and, in deep models, the MLP input.

    Subclasses build their layers inside ``with self._seeded_init():`` (so the
    same ``seed`` gives the same weights without touching the global RNG) and
    implement :meth:`forward_embeddings`.

    **Behaviour sequences.** Built with ``history_field=j``, the model also takes
    ``history`` ``(batch, max_len)``: ids of field ``j`` (``-1`` pads), looked up in
    the same table rows as field ``j``. :meth:`pool_history` turns them into one
    extra embedding (masked mean here; DIN attends with the candidate), appended
    after the table's fields, so ``n_fields = table.n_fields + 1`` for the head.
    An empty history pools to zeros.

    With ``history_side_fields=(c1, ...)`` every history item also carries its ids of
    fields ``c1, ...`` (e.g. the movie's genre, as DIN's goods carry their category):
    ``history`` is ``(batch, max_len, 1 + k)``, channel 0 the ids of ``history_field``,
    channel ``i`` those of ``history_side_fields[i - 1]``. An item's embedding is then the
    concatenation of its ``1 + k`` field embeddings (``(1 + k) * dim`` wide), and so is the
    candidate's query (its own ids of those fields); the pooled vector is appended as
    ``1 + k`` extra fields, so ``n_fields = table.n_fields + 1 + k``.

    Args:
        table: any :class:`~embedlab.tables.EmbeddingTable`.
        n_dense: number of numeric features per row (0: none).
        seed: seeds the initialisation of the model's own (non-table) parameters.
        history_field: the table field the behaviour sequence's ids belong to
            (None: the model takes no history).
        history_side_fields: table fields whose ids every history item carries too
            (``()``: the items are ids of ``history_field`` only).

    Shapes:
        ``forward(ids, dense, history)``: ids ``(batch, table.n_fields)`` int64, dense
        ``(batch, n_dense)`` float32 or None, history ``(batch, max_len)`` int64 or
        None -> logits ``(batch,)`` float32.
    """

    #: registry name, set by ``@register_model``
    name: ClassVar[str] = ""
    #: True for models that cannot be built without ``history_field`` (DIN)
    requires_history: ClassVar[bool] = False

    def __init__(
        self,
        table: EmbeddingTable,
        *,
        n_dense: int = 0,
        seed: int = 0,
        history_field: int | None = None,
        history_side_fields: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if not isinstance(table, EmbeddingTable):
            raise TypeError(f"table must be an EmbeddingTable, got {type(table).__name__}")
        self.table = table
        self.n_dense = check_int("n_dense", n_dense, min_value=0)
        self.seed = check_int("seed", seed, min_value=0)
        self.history_field = (
            None
            if history_field is None
            else check_int_in_range("history_field", history_field, 0, table.n_fields - 1)
        )
        self.history_side_fields = self._check_side_fields(history_side_fields)

    def _check_side_fields(self, side: Sequence[int]) -> tuple[int, ...]:
        if isinstance(side, (str, bytes)) or not isinstance(side, Sequence):
            raise TypeError(f"history_side_fields must be a sequence of ints, got {side!r}")
        out = tuple(
            check_int_in_range("history_side_fields", c, 0, self.table.n_fields - 1) for c in side
        )
        if out and self.history_field is None:
            raise ValueError(f"history_side_fields must be () without history_field, got {out}")
        if len(set(out)) != len(out) or self.history_field in out:
            raise ValueError(
                f"history_side_fields must differ from each other and from history_field "
                f"({self.history_field}), got {out}"
            )
        return out

    @property
    def history_columns(self) -> tuple[int, ...]:
        """The table fields a history item is made of: ``(history_field, *history_side_fields)``
        (``()`` without a history)."""
        if self.history_field is None:
            return ()
        return (self.history_field, *self.history_side_fields)

    # --- shapes -------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Embedding dimension (the table's ``dim``)."""
        return self.table.dim

    @property
    def n_fields(self) -> int:
        """Embeddings the head sees: the table's fields, plus the pooled history (1 + k)."""
        return self.table.n_fields + len(self.history_columns)

    @property
    def flat_dim(self) -> int:
        """Width of the flattened embeddings plus dense features: ``n_fields * dim + n_dense``."""
        return self.n_fields * self.dim + self.n_dense

    # --- construction helpers -----------------------------------------------
    @contextmanager
    def _seeded_init(self, stream: int = 0) -> Iterator[None]:
        """Layers created inside get weights from ``seed`` (and ``stream``, for a second,
        independent block); the global RNG is left as it was."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1_000_003 + stream)
            yield

    def _add_first_order(self) -> None:
        """Create the first-order read-out: ``linear_weight (n_fields, dim)``, ``bias``, dense."""
        bound = self.dim**-0.5
        self.linear_weight = nn.Parameter(
            torch.empty(self.n_fields, self.dim).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.zeros(()))
        self.dense_linear = nn.Linear(self.n_dense, 1, bias=False) if self.n_dense else None

    def first_order(self, emb: torch.Tensor, dense: torch.Tensor | None) -> torch.Tensor:
        """``bias + sum_j <w_j, e_j> (+ <v, dense>)``: ``(batch, n_fields, dim)`` -> ``(batch,)``"""
        out = (emb * self.linear_weight).sum(dim=(1, 2)) + self.bias
        if self.dense_linear is not None and dense is not None:
            out = out + self.dense_linear(dense).squeeze(-1)
        return out

    def _flat_input(self, emb: torch.Tensor, dense: torch.Tensor | None) -> torch.Tensor:
        """``(batch, n_fields * dim [+ n_dense])``: the embeddings side by side, then dense."""
        flat = emb.flatten(start_dim=1)
        if dense is not None and self.n_dense:
            flat = torch.cat([flat, dense], dim=1)
        return flat

    # --- forward ------------------------------------------------------------
    def forward(
        self,
        ids: torch.Tensor,
        dense: torch.Tensor | None = None,
        history: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Look up ``ids`` in the table and score them: -> logits ``(batch,)``."""
        return self.forward_with_embeddings(ids, dense, history)[0]

    def forward_with_embeddings(
        self,
        ids: torch.Tensor,
        dense: torch.Tensor | None = None,
        history: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`forward`, also returning the ``(batch, n_fields, dim)`` embeddings
        the head saw (the trainer's embedding L2 penalty needs them)."""
        dense = self._check_dense(ids, dense)
        emb = self.table(ids)
        if self.history_field is not None:
            if history is None:
                raise ValueError(
                    f"history must be given for a model built with "
                    f"history_field={self.history_field}"
                )
            columns = self.history_columns
            hist_emb, mask = self.embed_history(history, ids.shape[0])
            query = emb[:, list(columns)].flatten(start_dim=1)  # (batch, (1 + k) * dim)
            pooled = self.pool_history(query, hist_emb, mask)
            emb = torch.cat([emb, pooled.reshape(-1, len(columns), self.dim)], dim=1)
        elif history is not None:
            raise ValueError("history must be None for a model built with history_field=None")
        return self.forward_embeddings(emb, dense), emb

    def embed_history(self, history: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Look up ``history`` (``-1`` pads) in the rows of the history's fields.

        Args:
            history: ``(batch, max_len)`` ids of ``history_field``, or with
                ``history_side_fields`` ``(batch, max_len, 1 + k)`` (see the class doc).
            batch: the batch size the ids have.

        Returns:
            ``(batch, max_len, (1 + k) * dim)`` embeddings (each item's field embeddings
            side by side; zeros at pads) and the ``(batch, max_len)`` bool mask of real items.
        """
        columns = self.history_columns
        side = len(columns) - 1
        shape_ok = history.shape[0] == batch and (
            history.ndim == 2 if not side else history.ndim == 3 and history.shape[2] == 1 + side
        )
        if not shape_ok:
            want = f"(batch={batch}, max_len" + ("" if not side else f", {1 + side}") + ")"
            raise ValueError(f"history must have shape {want}, got {tuple(history.shape)}")
        channels = history.unsqueeze(-1) if not side else history
        mask = channels[..., 0] >= 0
        max_len = history.shape[1]
        width = len(columns) * self.dim
        if max_len == 0:
            return torch.zeros(batch, 0, width, device=history.device), mask
        rows = torch.zeros(
            batch * max_len, self.table.n_fields, dtype=torch.int64, device=history.device
        )
        for i, c in enumerate(columns):
            rows[:, c] = channels[..., i].clamp(min=0).reshape(-1)
        looked = self.table(rows)[:, list(columns)].reshape(batch, max_len, width)
        return looked * mask.unsqueeze(-1), mask

    def pool_history(
        self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Masked mean of the history embeddings: ``(batch, width)``; zeros for an empty one.

        Args:
            query: ``(batch, width)`` the candidate's embedding (unused here; DIN attends
                with it); ``width = (1 + k) * dim``.
            keys: ``(batch, max_len, width)`` history embeddings, zero at pads.
            mask: ``(batch, max_len)`` bool, True for real items.
        """
        count = mask.sum(dim=1, keepdim=True).clamp(min=1).to(keys.dtype)
        return keys.sum(dim=1) / count

    def forward_embeddings(self, emb: torch.Tensor, dense: torch.Tensor | None) -> torch.Tensor:
        """The model on looked-up embeddings ``(batch, n_fields, dim)`` -> logits ``(batch,)``."""
        raise NotImplementedError

    def _check_dense(self, ids: torch.Tensor, dense: torch.Tensor | None) -> torch.Tensor | None:
        if self.n_dense == 0:
            if dense is not None and dense.numel():
                raise ValueError(
                    f"dense must be None for a model built with n_dense=0, "
                    f"got shape {tuple(dense.shape)}"
                )
            return None
        if dense is None:
            raise ValueError(f"dense must be given for a model built with n_dense={self.n_dense}")
        if dense.shape != (ids.shape[0], self.n_dense):
            raise ValueError(
                f"dense must have shape (batch={ids.shape[0]}, n_dense={self.n_dense}), "
                f"got {tuple(dense.shape)}"
            )
        return dense

    # --- training -----------------------------------------------------------
    def regularization(self) -> torch.Tensor:
        """Extra loss term; the table's (zero for most tables)."""
        return self.table.regularization()

    def dense_params_bytes(self) -> int:
        """Bytes of the model's own (non-table) parameters at their real dtypes."""
        table_params = {id(p) for p in self.table.parameters()}
        return int(
            sum(
                p.numel() * p.element_size() for p in self.parameters() if id(p) not in table_params
            )
        )

    def extra_repr(self) -> str:
        hist = "" if self.history_field is None else f", history_field={self.history_field}"
        if self.history_side_fields:
            hist += f", history_side_fields={self.history_side_fields}"
        return (
            f"n_fields={self.n_fields}, dim={self.dim}, n_dense={self.n_dense}, "
            f"seed={self.seed}{hist}"
        )


def make_mlp(
    in_dim: int,
    hidden: Sequence[int],
    *,
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> nn.Sequential:
    """``[Linear -> (BatchNorm) -> ReLU -> (Dropout)] * len(hidden)``; empty when ``hidden == ()``.

    Output width is ``hidden[-1]`` (or ``in_dim`` when there are no layers).
    """
    layers: list[nn.Module] = []
    width = in_dim
    for units in hidden:
        layers.append(nn.Linear(width, units))
        if batch_norm:
            layers.append(nn.BatchNorm1d(units))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = units
    return nn.Sequential(*layers)
