"""SESA: supervised explicit semantic embeddings for ranking, with a latent residual.

After D. Bogdanova and M. Yazdani, "SESA: Supervised Explicit Semantic Analysis"
(2017): users and items live in one space whose first ``C`` dimensions are named
concepts of a knowledge base (here: any item labels, e.g. MovieLens genres), and a
user--item score is their inner product in that space, so every score splits into
per-concept contributions. The paper encodes text with RNNs into the skill space; this
module learns the vectors directly (one row per user and item), trains them for ranking
(BPR or BCE with sampled negatives) and supervises each item's concept dimensions with a
BCE loss against its concept indicators. ``residual_dim`` adds ``r`` free (latent)
dimensions after the concepts, which the model may use for what the concepts miss.

``concept_weight=0`` gives the plain latent model of the same total dimension (the
baseline of ``benchmarks/sesa_movielens.py``).

**Why not a CTR model.** :class:`~embedlab.models.CTRModel` is a head over an injected
:class:`~embedlab.tables.EmbeddingTable` of arbitrary fields (and the CTR conformance
suite builds every registered model on every table without side data). SESA needs an
item-by-concept indicator matrix at construction, a two-tower user/item inner product and
a supervision loss on item rows, which compressed/hashed tables do not have one-to-one, so
it is a standalone model here.

Example:
    >>> import numpy as np
    >>> labels = np.array([[1, 0], [0, 1], [1, 1]])
    >>> model = SESA(4, 3, ["Comedy", "Drama"], labels, residual_dim=1)
    >>> model.dimension_names
    ('Comedy', 'Drama', 'latent_0')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from embedlab._validation import check_choice, check_int, check_positive_float

__all__ = ["SESA", "SESAFitResult", "explain_dimension", "fit_sesa", "ranking_auc"]


def _check_concepts(concepts: Any) -> tuple[str, ...]:
    if isinstance(concepts, str) or not isinstance(concepts, Sequence):
        raise TypeError(f"concepts must be a sequence of names, got {type(concepts).__name__}")
    names = tuple(concepts)
    if not names:
        raise ValueError("concepts must name at least one concept, got an empty list")
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"concepts must be non-empty strings, got {name!r}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"concepts must be unique, got {', '.join(map(repr, repeated))} twice")
    return names


def _check_item_concepts(value: Any, n_items: int, concepts: tuple[str, ...]) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (n_items, len(concepts)):
        raise ValueError(
            f"item_concepts must have shape (n_items={n_items}, n_concepts={len(concepts)}), "
            f"got {arr.shape}"
        )
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError("item_concepts must hold only 0/1 indicators")
    counts = arr.sum(axis=0)
    empty = [concepts[c] for c in np.flatnonzero(counts == 0).tolist()]
    if empty:
        raise ValueError(
            f"item_concepts must give every concept at least one positive item; "
            f"no item has {', '.join(map(repr, empty))}"
        )
    return arr.astype(np.float32)


class SESA(nn.Module):
    """User and item vectors whose first ``C`` dimensions are named, supervised concepts.

    ``score(u, i) = <user_u, item_i> + item_bias_i``; the item's concept dimensions
    ``item_i[:C]`` are concept logits (``sigmoid`` = probability the item has the concept)
    and ``item_i[C:]`` is the latent residual.

    Args:
        n_users: number of users (ids ``0 .. n_users - 1``).
        n_items: number of items (ids ``0 .. n_items - 1``).
        concepts: the names of the ``C`` explicit dimensions (non-empty, unique).
        item_concepts: ``(n_items, C)`` 0/1 indicators; every concept needs a positive item.
        residual_dim: latent dimensions after the concepts (0: purely explicit).
        seed: seeds the initialisation (the global RNG is left as it was).
        init_std: standard deviation of the initial vectors.
    """

    item_concepts: torch.Tensor

    def __init__(
        self,
        n_users: int,
        n_items: int,
        concepts: Sequence[str],
        item_concepts: Any,
        *,
        residual_dim: int = 0,
        seed: int = 0,
        init_std: float = 0.1,
    ) -> None:
        super().__init__()
        self.n_users = check_int("n_users", n_users, min_value=1)
        self.n_items = check_int("n_items", n_items, min_value=1)
        self.concepts = _check_concepts(concepts)
        self.residual_dim = check_int("residual_dim", residual_dim, min_value=0)
        self.seed = check_int("seed", seed, min_value=0)
        std = check_positive_float("init_std", init_std)
        labels = _check_item_concepts(item_concepts, self.n_items, self.concepts)
        self.register_buffer("item_concepts", torch.from_numpy(labels))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.user = nn.Parameter(torch.randn(self.n_users, self.dim) * std)
            self.item = nn.Parameter(torch.randn(self.n_items, self.dim) * std)
        self.item_bias = nn.Parameter(torch.zeros(self.n_items))

    @property
    def n_concepts(self) -> int:
        """``C``, the number of explicit (named) dimensions."""
        return len(self.concepts)

    @property
    def dim(self) -> int:
        """Total dimension ``C + residual_dim``."""
        return self.n_concepts + self.residual_dim

    @property
    def dimension_names(self) -> tuple[str, ...]:
        """One name per dimension: the concepts, then ``latent_0 .. latent_{r-1}``."""
        return self.concepts + tuple(f"latent_{k}" for k in range(self.residual_dim))

    def dimension_index(self, name: str) -> int:
        """The dimension called ``name`` (a concept or ``latent_k``)."""
        return self.dimension_names.index(check_choice("concept", name, self.dimension_names))

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """``(batch,)`` scores of user--item pairs (same-shape int64 id tensors)."""
        return (self.user[users] * self.item[items]).sum(-1) + self.item_bias[items]

    def concept_logits(self, items: torch.Tensor) -> torch.Tensor:
        """``(batch, C)`` concept logits of ``items``: their first ``C`` dimensions."""
        return self.item[items, : self.n_concepts]

    def concept_loss(
        self, items: torch.Tensor, labelled: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean BCE of the items' concept logits against their concept indicators.

        ``labelled``: optional ``(n_items,)`` bool; only those items' labels count (the
        mean is over the labelled items of the batch; 0 when it has none).
        """
        target = self.item_concepts[items]
        per_item = F.binary_cross_entropy_with_logits(
            self.concept_logits(items), target, reduction="none"
        ).mean(-1)
        if labelled is None:
            return per_item.mean()
        keep = labelled[items].to(per_item.dtype)
        return (per_item * keep).sum() / keep.sum().clamp(min=1.0)

    @torch.no_grad()
    def all_scores(self) -> np.ndarray:
        """``(n_users, n_items)`` float64 score matrix."""
        out = self.user @ self.item.T + self.item_bias
        return np.asarray(out.double().cpu().numpy())

    @torch.no_grad()
    def top_items(self, concept: str, k: int = 10) -> np.ndarray:
        """Ids of the ``k`` items with the largest value on dimension ``concept``."""
        k = check_int("k", k, min_value=1)
        col = self.item[:, self.dimension_index(concept)].detach().cpu().numpy()
        order = np.argsort(-col, kind="stable")
        return np.asarray(order[: min(k, self.n_items)], dtype=np.int64)

    @torch.no_grad()
    def explain_score(self, user: int, item: int) -> dict[str, float]:
        """Per-dimension contributions ``user_d * item_d`` (by name) plus ``"bias"``.

        They sum to :meth:`score` of the pair.
        """
        user = check_int("user", user, min_value=0)
        item = check_int("item", item, min_value=0)
        if user >= self.n_users or item >= self.n_items:
            raise ValueError(
                f"user must be < {self.n_users} and item < {self.n_items}, got {user}, {item}"
            )
        parts = (self.user[user] * self.item[item]).double().cpu().numpy().tolist()
        out = dict(zip(self.dimension_names, parts, strict=True))
        out["bias"] = float(self.item_bias[item])
        return out


def explain_dimension(model: SESA, name: str, k: int = 10) -> dict[str, Any]:
    """What dimension ``name`` means: its top items and their share carrying the concept.

    Returns ``{"name", "top_items", "concept_share"}``; ``concept_share`` is the share
    of the top items labelled with the concept (None for a latent dimension).
    """
    top = model.top_items(name, k)
    share: float | None = None
    if name in model.concepts:
        col = model.item_concepts[:, model.concepts.index(name)].cpu().numpy()
        share = float(col[top].mean())
    return {"name": name, "top_items": top, "concept_share": share}


@dataclass
class SESAFitResult:
    """Per-epoch mean ranking loss and concept loss of :func:`fit_sesa`."""

    rank_loss: list[float] = field(default_factory=list)
    concept_loss: list[float] = field(default_factory=list)


def _check_pairs(model: SESA, users: Any, items: Any) -> tuple[torch.Tensor, torch.Tensor]:
    u = torch.as_tensor(np.asarray(users), dtype=torch.int64)
    i = torch.as_tensor(np.asarray(items), dtype=torch.int64)
    if u.ndim != 1 or u.shape != i.shape:
        raise ValueError(
            f"users and items must be 1-D of equal length, got {tuple(u.shape)}, {tuple(i.shape)}"
        )
    if u.numel() == 0:
        raise ValueError("users must hold at least one positive pair, got 0")
    for name, ids, n in (("users", u, model.n_users), ("items", i, model.n_items)):
        if int(ids.min()) < 0 or int(ids.max()) >= n:
            raise ValueError(
                f"{name} must be ids in [0, {n}), got range [{ids.min()}, {ids.max()}]"
            )
    return u, i


def _labelled_mask(model: SESA, labelled_items: Any) -> torch.Tensor | None:
    if labelled_items is None:
        return None
    ids = np.asarray(labelled_items)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or ids.size == 0:
        raise ValueError(
            f"labelled_items must be a non-empty 1-D array of item ids, got shape {ids.shape} "
            f"dtype {ids.dtype}"
        )
    if int(ids.min()) < 0 or int(ids.max()) >= model.n_items:
        raise ValueError(
            f"labelled_items must be ids in [0, {model.n_items}), "
            f"got range [{int(ids.min())}, {int(ids.max())}]"
        )
    mask = torch.zeros(model.n_items, dtype=torch.bool)
    mask[torch.from_numpy(ids.astype(np.int64))] = True
    return mask


def fit_sesa(
    model: SESA,
    users: Any,
    items: Any,
    *,
    epochs: int = 10,
    batch_size: int = 1024,
    lr: float = 0.01,
    loss: str = "bpr",
    concept_weight: float = 1.0,
    weight_decay: float = 1e-4,
    seed: int = 0,
    labelled_items: Any = None,
) -> SESAFitResult:
    """Train ``model`` on positive ``(users[k], items[k])`` pairs, one sampled negative each.

    ``loss="bpr"``: ``-log sigmoid(s(u, i) - s(u, j))``; ``loss="bce"``: BCE of
    ``s(u, i)`` against 1 and ``s(u, j)`` against 0. ``j`` is a uniformly sampled item.
    The concept loss (BCE of the concept dimensions of ``i`` and ``j`` against their
    indicators) is added with weight ``concept_weight`` (0: a plain latent model).
    ``weight_decay`` is an L2 penalty on the vectors of the batch. ``labelled_items``:
    ids of the items whose concept labels supervise (None: all); the others' concept
    dimensions are learnt from the ranking signal alone (a held-out check of the concepts).
    """
    u_all, i_all = _check_pairs(model, users, items)
    epochs = check_int("epochs", epochs, min_value=1)
    batch_size = check_int("batch_size", batch_size, min_value=1)
    lr = check_positive_float("lr", lr)
    loss = check_choice("loss", loss, ("bpr", "bce"))
    concept_weight = check_positive_float("concept_weight", concept_weight, strict=False)
    weight_decay = check_positive_float("weight_decay", weight_decay, strict=False)
    gen = torch.Generator().manual_seed(check_int("seed", seed, min_value=0))
    labelled = _labelled_mask(model, labelled_items)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    result = SESAFitResult()
    n = u_all.numel()
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        tot_rank = tot_concept = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            u, i = u_all[idx], i_all[idx]
            j = torch.randint(0, model.n_items, (idx.numel(),), generator=gen)
            pos, neg = model.score(u, i), model.score(u, j)
            if loss == "bpr":
                rank = -F.logsigmoid(pos - neg).mean()
            else:
                rank = F.softplus(-pos).mean() + F.softplus(neg).mean()
            both = torch.cat([i, j])
            con = model.concept_loss(both, labelled)
            reg = model.user[u].square().sum(-1).mean() + model.item[both].square().sum(-1).mean()
            total = rank + concept_weight * con + weight_decay * reg
            opt.zero_grad()
            total.backward()  # type: ignore[no-untyped-call]
            opt.step()
            tot_rank += float(rank.detach()) * idx.numel()
            tot_concept += float(con.detach()) * idx.numel()
        result.rank_loss.append(tot_rank / n)
        result.concept_loss.append(tot_concept / n)
    return result


def ranking_auc(
    scores: np.ndarray,
    test_users: Any,
    test_items: Any,
    seen_users: Any,
    seen_items: Any,
) -> float:
    """Mean per-user AUC: each user's held-out items vs every item they never interacted with.

    Args:
        scores: ``(n_users, n_items)`` score matrix (e.g. :meth:`SESA.all_scores`).
        test_users, test_items: the held-out positive pairs.
        seen_users, seen_items: every pair that is not a negative (train and test positives,
            and any other interaction); the held-out pairs are removed from negatives even if
            not listed here.

    Ties count one half. Users without a held-out item or without a negative are skipped.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be (n_users, n_items), got shape {s.shape}")
    tu, ti = np.asarray(test_users, np.int64), np.asarray(test_items, np.int64)
    excluded = np.zeros(s.shape, dtype=bool)
    excluded[np.asarray(seen_users, np.int64), np.asarray(seen_items, np.int64)] = True
    excluded[tu, ti] = True
    aucs: list[float] = []
    order = np.argsort(tu, kind="stable")
    tu, ti = tu[order], ti[order]
    bounds = np.flatnonzero(np.diff(tu)) + 1
    for users_block, items_block in zip(np.split(tu, bounds), np.split(ti, bounds), strict=True):
        if users_block.size == 0:
            continue
        user = int(users_block[0])
        neg = np.sort(s[user, ~excluded[user]])
        if neg.size == 0:
            continue
        pos = s[user, np.unique(items_block)]
        below = np.searchsorted(neg, pos, side="left")
        ties = np.searchsorted(neg, pos, side="right") - below
        aucs.append(float(((below + 0.5 * ties) / neg.size).mean()))
    if not aucs:
        raise ValueError("test_users must leave at least one user with a negative, got none")
    return float(np.mean(aucs))
