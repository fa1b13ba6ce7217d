"""DIN, the Deep Interest Network (Zhou et al., KDD 2018): the candidate attends to the history."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from embedlab._validation import (
    check_choice,
    check_int_tuple,
    check_positive_float,
    check_probability,
)
from embedlab.data import CTRDataset
from embedlab.models._base import CTRModel
from embedlab.models._dice import Dice
from embedlab.models._registry import register_model
from embedlab.tables import EmbeddingTable

__all__ = ["ATTENTION_ACTIVATIONS", "ATTENTION_NORMS", "DIN", "count_ids", "make_dice_mlp"]

#: activations of the local activation unit: the paper's Dice / PReLU, the reference code's sigmoid
ATTENTION_ACTIVATIONS = ("dice", "prelu", "sigmoid")
#: ``none``: raw weights (the paper, DeepCTR); ``softmax``: the reference code's scaled softmax
ATTENTION_NORMS = ("none", "softmax")


def _activation(name: str, units: int) -> nn.Module:
    if name == "dice":
        return Dice(units)
    if name == "prelu":
        return nn.PReLU(units, init=0.25)
    return nn.Sigmoid()


def make_dice_mlp(
    in_dim: int, hidden: Sequence[int], *, dropout: float = 0.0, activation: str = "dice"
) -> nn.Sequential:
    """``[Linear -> Dice -> (Dropout)] * len(hidden)``; empty when ``hidden == ()``.

    ``activation`` replaces Dice by ``"prelu"`` (one slope per unit) or ``"sigmoid"``.
    """
    check_choice("activation", activation, ATTENTION_ACTIVATIONS)
    layers: list[nn.Module] = []
    width = in_dim
    for units in hidden:
        layers += [nn.Linear(width, units), _activation(activation, units)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = units
    return nn.Sequential(*layers)


def count_ids(data: CTRDataset) -> tuple[np.ndarray, ...]:
    """Occurrences of every id of every field in ``data``: the ``n_j`` of DIN's regulariser.

    History items count towards their field (a movie in 20 histories and rated
    once occurs 21 times), as the paper counts every occurrence of a feature id;
    so do the side channels of a 3-d history (a history movie's genre).

    Returns:
        One int64 array ``(cardinality,)`` per field.
    """
    if not isinstance(data, CTRDataset):
        raise TypeError(f"data must be a CTRDataset, got {type(data).__name__}")
    counts = [
        np.bincount(data.ids[:, j], minlength=f.cardinality).astype(np.int64)
        for j, f in enumerate(data.fields)
    ]
    if data.history is not None and data.history_field is not None:
        hist = data.history if data.history.ndim == 3 else data.history[..., None]
        for i, c in enumerate((data.history_field, *data.history_side_fields)):
            items = hist[..., i][hist[..., i] >= 0]
            counts[c] += np.bincount(items, minlength=data.fields[c].cardinality)
    return tuple(counts)


@register_model("din")
class DIN(CTRModel):
    """Deep Interest Network: attention of the candidate over the behaviour history, Dice MLPs.

    After G. Zhou et al., "Deep Interest Network for Click-Through Rate
    Prediction", KDD 2018.

    **Local activation unit.** For the candidate ``q`` (the row's embedding of
    ``history_field``, concatenated with its embeddings of ``history_side_fields``,
    e.g. movie + genre as the paper's goods_id + cate_id) and each history item
    ``k`` (its embeddings of the same fields, concatenated), a small MLP over
    ``[q, k, q - k, q * k]`` (``attention_hidden`` with ``attention_activation``)
    gives a scalar weight ``w_k``; the history pools to ``sum_k w_k k``, appended
    to the fields as ``1 + len(history_side_fields)`` embeddings. With
    ``attention_norm="none"`` (the paper's text, DeepCTR) the weights are *not*
    normalised (the sum keeps the intensity of the user's interest) and pads
    weigh 0, so an empty history pools to zeros. ``attention_norm="softmax"`` is
    what the authors' code does: ``w = softmax(score / sqrt(width))`` over the real
    items (pads get ``-inf``; an empty history still pools to zeros). The unit
    runs only on the real items (pads never enter Dice's batch statistics).

    **Differences from the reference** (the authors' TensorFlow code,
    zhougr1993/DeepInterestNetwork ``din/model.py`` / ``model_dice.py``, and
    DeepCTR's ``DIN``), and which of them we close:

    - *History items carry their category* (goods_id + cate_id embeddings
      concatenated, for the candidate too): closed with ``history_side_fields``;
      ``movielens-seq`` gives each history movie its first genre (option
      ``history_genre``; ``False`` is the old id-only history).
    - *Attention inputs* ``[q, k, q - k, q * k]``: the same in both references and here.
    - *Normalisation*: the paper says no softmax, DeepCTR defaults to none
      (pads 0); the authors' code masks pads with ``-2**32 + 1``, divides by
      ``sqrt(width)`` and applies a softmax. Both are available (``attention_norm``).
    - *Unit activation*: the paper's Dice / PReLU, DeepCTR's Dice; the authors'
      code uses sigmoid 80-40 even in ``model_dice.py``. All three are available.
    - *Head*: the code batch-normalises the pooled history and passes it through a
      dense layer, drops the user id (its embedding is created but unused) and
      scores ``[hist, item] -> BN -> 80-40 (sigmoid or Dice) -> 1`` plus a per-item
      bias; ours is the first-order read-out plus ``MLP(all fields, pooled)``,
      200-80 with Dice (the paper's text). Not changed: every model here shares
      the first-order read-out so the tables' budgets cover every per-id byte.
    - *Optimiser*: the code trains with plain SGD (lr 1.0, 0.1 after 336k steps,
      batch 32, gradient clip 5, 50 epochs) and no MBA regulariser; we use the
      shared trainer (Adam, batch 2048, early stopping on valid AUC) and MBA L2.
    - *Sizes*: item and category embeddings of 64 each (128 per item); ours ``dim``
      per field (16 in the benchmark).
    - *Data protocol*: Amazon Electronics reviews, a positive (the next reviewed
      item) and one sampled negative per test user, gAUC over those pairs; the
      paper's MovieLens-20M run labels ratings 4-5 positive and splits users at
      random. Ours (``movielens-seq``): ml-latest-small, every rating is an
      impression (negatives are rated movies, a harder task than sampled
      negatives), split per user in time. Not changed: the data set is given.

    **Measured** (``benchmarks/din_movielens.py``, 3 seeds, the same 3 tuning
    candidates for all): with movie + genre history, DIN with the authors' code's
    unit (``attention_norm="softmax", attention_activation="sigmoid"``) reaches test
    gAUC 0.651 +- 0.002, the same with the softmax and Dice (the default since), with
    the paper's text (``attention_norm="none"``) 0.636 +- 0.010 (0.625 with movie ids
    only), DeepFM with the mean-pooled history 0.649 +- 0.004: the paper's gain shows
    only as a tie on movielens-seq (see the README).

    **Head.** ``logit = first_order + MLP([e_1, ..., e_F, pooled, dense])`` with
    Dice after each hidden layer (``hidden``, the paper's 200-80); the
    first-order read-out is the one of :class:`CTRModel`.

    **Mini-batch aware (MBA) regularisation.** The paper's L2 on the embedding
    rows touched by the batch only, each weighted by ``1 / n_j``::

        penalty = mba_lambda * sum_{(field, id) j in the batch} ||e_j||^2 / n_j

    where the sum runs over the *distinct* ids of each field in the batch
    (candidate columns and, for ``history_field``, the history items). ``e_j``
    is the table's embedding of id ``j``: a row of a full table, the
    reconstructed vector of a compressed one (so the penalty reaches whatever
    parameters produce it). ``n_j`` comes from ``id_counts`` (e.g.
    :func:`count_ids` of the training data). Without ``id_counts`` the model
    counts the ids of the training batches it sees, the current one included:
    after ``e`` epochs ``n_j`` is ``e`` times the data count, so the penalty
    anneals like ``1 / e`` (pass ``id_counts`` for the paper's fixed weights).

    The trainer asks for the penalty with :meth:`regularization` right after the
    forward pass, so the penalty of the latest training-mode forward (with
    gradients enabled) is stored and returned there; eval-mode or no-grad
    forwards store none. ``mba_lambda=0`` disables it (and the counting).

    Args:
        table: any embedding table.
        history_field: the field whose ids the history holds (required).
        attention_hidden: layer sizes of the local activation unit.
        attention_activation: ``"dice"`` (default), ``"prelu"`` or ``"sigmoid"``.
        attention_norm: ``"softmax"`` (default, the authors' code) or ``"none"`` (raw
            weights, the paper's text).
        hidden: layer sizes of the head MLP.
        dropout: dropout after each hidden layer of the head, in [0, 1).
        mba_lambda: weight of the MBA regulariser (>= 0; 0 disables).
        id_counts: occurrences per id, one array ``(cardinality,)`` per field;
            None counts the training batches seen.
        n_dense: number of numeric features (linear term and MLP input).
        seed: seeds the model's own parameters.
        history_side_fields: fields every history item carries too (e.g. genre).

    Shapes:
        attention input ``(n_real_items, 4 * width)`` with ``width = (1 + k) * dim``;
        head input ``(batch, (n_fields + 1 + k) * dim + n_dense)``, ``k`` side fields.

    Example:
        >>> import torch
        >>> from embedlab.tables import Field, FullTable
        >>> table = FullTable([Field("user", 10), Field("item", 20)], dim=4)
        >>> model = DIN(table, history_field=1, attention_hidden=(8,), hidden=(8,))
        >>> history = torch.tensor([[3, 5, -1], [-1, -1, -1]])
        >>> model(torch.tensor([[1, 2], [3, 4]]), history=history).shape
        torch.Size([2])
    """

    requires_history = True
    id_counts: torch.Tensor
    id_offsets: torch.Tensor

    def __init__(
        self,
        table: EmbeddingTable,
        *,
        attention_hidden: Sequence[int] | str = (80, 40),
        attention_activation: str = "dice",
        attention_norm: str = "softmax",
        hidden: Sequence[int] | str = (200, 80),
        dropout: float = 0.0,
        mba_lambda: float = 1e-4,
        id_counts: Sequence[np.ndarray | Sequence[int]] | None = None,
        n_dense: int = 0,
        seed: int = 0,
        history_field: int | None = None,
        history_side_fields: Sequence[int] = (),
    ) -> None:
        if history_field is None:
            raise ValueError(
                "history_field must be given for din (the field whose ids the behaviour "
                "history holds, e.g. the movie column), got None"
            )
        super().__init__(
            table,
            n_dense=n_dense,
            seed=seed,
            history_field=history_field,
            history_side_fields=history_side_fields,
        )
        self.attention_hidden = check_int_tuple("attention_hidden", attention_hidden)
        self.attention_activation = check_choice(
            "attention_activation", attention_activation, ATTENTION_ACTIVATIONS
        )
        self.attention_norm = check_choice("attention_norm", attention_norm, ATTENTION_NORMS)
        self.hidden = check_int_tuple("hidden", hidden)
        self.dropout = check_probability("dropout", dropout)
        self.mba_lambda = check_positive_float("mba_lambda", mba_lambda, strict=False)
        cards = table.cardinalities
        offsets = np.concatenate([[0], np.cumsum(cards)[:-1]]).astype(np.int64)
        self.register_buffer("id_offsets", torch.from_numpy(offsets), persistent=False)
        self.counts_given = id_counts is not None
        counts = self._check_counts(id_counts, cards)
        if counts is None:  # counted online when the regulariser is on
            counts = torch.zeros(sum(cards) if self.mba_lambda > 0 else 0, dtype=torch.int64)
        # training statistics, not model state: not saved, not in dense_params_bytes
        self.register_buffer("id_counts", counts, persistent=False)
        self._penalty: torch.Tensor | None = None

        width = len(self.history_columns) * self.dim  # one history item's embedding
        with self._seeded_init():
            self._add_first_order()
            self.attention = make_dice_mlp(
                4 * width, self.attention_hidden, activation=self.attention_activation
            )
            self.attention_out = nn.Linear(
                self.attention_hidden[-1] if self.attention_hidden else 4 * width, 1
            )
            self.mlp = make_dice_mlp(self.flat_dim, self.hidden, dropout=self.dropout)
            self.mlp_out = nn.Linear(self.hidden[-1] if self.hidden else self.flat_dim, 1)

    @staticmethod
    def _check_counts(
        id_counts: Sequence[np.ndarray | Sequence[int]] | None, cards: list[int]
    ) -> torch.Tensor | None:
        if id_counts is None:
            return None
        if isinstance(id_counts, (str, bytes)) or len(id_counts) != len(cards):
            got = len(id_counts) if not isinstance(id_counts, (str, bytes)) else repr(id_counts)
            raise ValueError(
                f"id_counts must hold one count array per field ({len(cards)}), got {got}"
            )
        parts = []
        for j, (c, card) in enumerate(zip(id_counts, cards, strict=True)):
            arr = np.asarray(c)
            if arr.shape != (card,) or arr.dtype.kind not in "iu":
                raise ValueError(
                    f"id_counts[{j}] must be an integer array of shape ({card},), "
                    f"got {arr.dtype} {arr.shape}"
                )
            if arr.size and arr.min() < 0:
                raise ValueError(f"id_counts[{j}] must be >= 0, got {arr.min()}")
            parts.append(arr.astype(np.int64))
        return torch.from_numpy(np.concatenate(parts))

    # --- attention --------------------------------------------------------------
    def attention_weights(
        self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Weight of each history item: ``(batch, max_len)``, 0 at pads.

        Un-normalised scores with ``attention_norm="none"``; with ``"softmax"``,
        ``softmax(score / sqrt(width))`` over each row's real items.

        Args:
            query: ``(batch, width)`` candidate embeddings.
            keys: ``(batch, max_len, width)`` history embeddings.
            mask: ``(batch, max_len)`` bool, True for real items.
        """
        batch, max_len, width = keys.shape
        q = query.unsqueeze(1).expand(batch, max_len, width)[mask]  # (n_real, width)
        k = keys[mask]  # (n_real, width)
        unit_in = torch.cat([q, k, q - k, q * k], dim=-1)  # (n_real, 4 * width)
        scores = self.attention_out(self.attention(unit_in)).squeeze(-1)  # (n_real,)
        if self.attention_norm == "none":
            return keys.new_zeros(batch, max_len).masked_scatter(mask, scores)
        scaled = keys.new_full((batch, max_len), -torch.inf).masked_scatter(
            mask, scores / width**0.5
        )
        weights = torch.softmax(scaled, dim=1)
        return torch.where(mask, weights, torch.zeros_like(weights))  # empty rows: 0, not NaN

    def pool_history(
        self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """``sum_k w_k k`` with the local activation unit's weights: ``(batch, width)``."""
        weights = self.attention_weights(query, keys, mask)
        return (weights.unsqueeze(-1) * keys).sum(dim=1)

    def forward_embeddings(self, emb: torch.Tensor, dense: torch.Tensor | None) -> torch.Tensor:
        deep: torch.Tensor = self.mlp_out(self.mlp(self._flat_input(emb, dense))).squeeze(-1)
        return self.first_order(emb, dense) + deep

    # --- mini-batch aware regularisation -------------------------------------------
    def forward_with_embeddings(
        self,
        ids: torch.Tensor,
        dense: torch.Tensor | None = None,
        history: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = super().forward_with_embeddings(ids, dense, history)
        self._penalty = None
        if self.mba_lambda > 0 and self.training and torch.is_grad_enabled():
            if not self.counts_given:
                self._observe(ids, history)
            self._penalty = self.mba_penalty(ids, history)
        return out

    def _observe(self, ids: torch.Tensor, history: torch.Tensor | None) -> None:
        """Add the batch's id occurrences to ``id_counts``."""
        flat = (ids.to(torch.int64) + self.id_offsets).reshape(-1)
        for c, items in self._history_ids(history).items():
            flat = torch.cat([flat, items + self.id_offsets[c]])
        self.id_counts.index_add_(0, flat, torch.ones_like(flat))

    def mba_penalty(self, ids: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
        """``mba_lambda * sum_j ||e_j||^2 / n_j`` over the distinct ids of the batch: ``()``.

        ``n_j`` is clamped to >= 1 (an id with no recorded occurrence weighs 1).

        Args:
            ids: ``(batch, n_fields)`` int64.
            history: ``(batch, max_len)`` (or ``(batch, max_len, 1 + k)``) int64 with
                ``-1`` pads, or None.
        """
        ids = ids.to(torch.int64)
        from_history = self._history_ids(history)
        columns = []
        for j in range(self.table.n_fields):  # one unique per field, not per row
            col = ids[:, j]
            if j in from_history:
                col = torch.cat([col, from_history[j]])
            columns.append(torch.unique(col))
        n_rows = max(c.numel() for c in columns)
        rows = torch.zeros(n_rows, self.table.n_fields, dtype=torch.int64, device=ids.device)
        present = torch.zeros(n_rows, self.table.n_fields, dtype=torch.bool, device=ids.device)
        for j, col in enumerate(columns):  # field j's distinct ids, padded with id 0
            rows[: col.numel(), j] = col
            present[: col.numel(), j] = True
        emb: torch.Tensor = self.table(rows)  # (n_rows, n_fields, dim)
        if self.id_counts.numel():
            n = self.id_counts[rows + self.id_offsets].clamp(min=1).to(emb.dtype)
        else:
            n = torch.ones_like(rows, dtype=emb.dtype)
        per_id = emb.square().sum(dim=-1) / n * present  # (n_rows, n_fields)
        return per_id.sum() * self.mba_lambda

    def _history_ids(self, history: torch.Tensor | None) -> dict[int, torch.Tensor]:
        """The real (non-pad) ids of each history channel, by table field."""
        if history is None:
            return {}
        channels = history.unsqueeze(-1) if history.ndim == 2 else history
        real = channels[..., 0] >= 0
        return {c: channels[..., i][real] for i, c in enumerate(self.history_columns)}

    def regularization(self) -> torch.Tensor:
        """The table's term plus the MBA penalty of the latest training forward pass."""
        reg = super().regularization()
        return reg if self._penalty is None else reg + self._penalty
