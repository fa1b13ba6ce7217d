"""Online miners: pick (anchor, positive, negative) index triples from a labelled batch.

Every triplet miner is called as ``miner(embeddings (batch, dim), labels (batch,))``
and returns ``(a, p, n)``: three int64 tensors of equal length with
``labels[a] == labels[p]``, ``a != p`` and ``labels[a] != labels[n]``.
:class:`AllPairsMiner` is a *pair* miner and returns ``(a1, p, a2, n)``: the
positive pairs ``(a1, p)`` and the negative pairs ``(a2, n)``.

Mining runs without gradients. A miner built with ``distance=None`` follows the
loss it is given to (the loss passes its own distance matrix to :meth:`mine`);
called on its own it uses the squared L2 distance of normalised embeddings.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from embedlab._validation import check_batch_labels, check_choice, check_embeddings
from embedlab._validation import check_positive_float as _check_float
from embedlab.losses._base import label_masks
from embedlab.losses.distances import Distance, LpDistance, make_distance

__all__ = [
    "MINERS",
    "AllPairsMiner",
    "AllTripletsMiner",
    "BatchHardMiner",
    "HardMiner",
    "Miner",
    "SemiHardMiner",
    "make_miner",
]

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class Miner:
    """Base class of the miners.

    Args:
        distance: the distance to mine with; ``None`` uses the loss's distance
            (or squared L2 on normalised embeddings when called directly).
    """

    returns_pairs: ClassVar[bool] = False
    #: mines from the embeddings with its own distance (a pytorch-metric-learning miner)
    external: ClassVar[bool] = False

    def __init__(self, *, distance: Distance | str | None = None) -> None:
        self.distance = None if distance is None else make_distance(distance, LpDistance())

    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Mine ``embeddings (batch, dim)`` with ``labels (batch,)``; see the module docstring."""
        emb = check_embeddings("embeddings", embeddings)
        lab = check_batch_labels(labels, emb.shape[0]).to(emb.device)
        dist = self.distance if self.distance is not None else LpDistance(power=2)
        with torch.no_grad():
            mat = dist.pairwise(emb.detach())
        return self.mine(mat, lab, is_inverted=dist.is_inverted)

    def mine(
        self, mat: torch.Tensor, labels: torch.Tensor, *, is_inverted: bool
    ) -> tuple[torch.Tensor, ...]:
        """Mine from a precomputed ``(batch, batch)`` distance or similarity matrix."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(distance={self.distance!r})"


def _positive_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pos, neg = label_masks(labels)
    a, p = torch.nonzero(pos, as_tuple=True)
    return a, p, neg


def _triplets_where(
    a: torch.Tensor, p: torch.Tensor, cond: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # cond: (n_pairs, batch) -> every (pair, negative) that satisfies it
    pair_idx, n = torch.nonzero(cond, as_tuple=True)
    return a[pair_idx], p[pair_idx], n


class AllTripletsMiner(Miner):
    """Every valid triplet of the batch: all anchor-positive pairs x all negatives.

    Example:
        >>> import torch
        >>> a, p, n = AllTripletsMiner()(torch.randn(4, 8), torch.tensor([0, 0, 1, 1]))
        >>> len(a)
        8
    """

    def mine(self, mat: torch.Tensor, labels: torch.Tensor, *, is_inverted: bool) -> Triplets:
        a, p, neg = _positive_pairs(labels)
        return _triplets_where(a, p, neg[a])


class HardMiner(Miner):
    """Hard triplets: the negative is at least as close to the anchor as the positive.

    ``d_an <= d_ap`` (for a similarity ``s_an >= s_ap``), over all anchor-positive
    pairs. These triplets violate any margin >= 0 (PML's ``"hard"`` triplets).

    Example:
        >>> import torch
        >>> a, p, n = HardMiner()(torch.randn(16, 8), torch.arange(16) % 4)
        >>> bool((a != p).all())
        True
    """

    def mine(self, mat: torch.Tensor, labels: torch.Tensor, *, is_inverted: bool) -> Triplets:
        d = -mat if is_inverted else mat
        a, p, neg = _positive_pairs(labels)
        dan = d[a]  # (n_pairs, batch)
        cond = neg[a] & (dan <= d[a, p][:, None])
        return _triplets_where(a, p, cond)


class SemiHardMiner(Miner):
    """FaceNet's semi-hard triplets: ``d_ap < d_an < d_ap + margin``.

    All anchor-positive pairs of the batch are kept; for each, every negative
    that is farther than the positive but still inside the margin is returned
    (Schroff et al., "FaceNet", CVPR 2015, section 3.2). With a similarity the
    rule reads ``s_ap > s_an > s_ap - margin``.

    Args:
        margin: the triplet margin alpha, ``> 0`` (use the loss's margin).
        distance: see :class:`Miner`.

    Example:
        >>> import torch
        >>> miner = SemiHardMiner(margin=0.2)
        >>> a, p, n = miner(torch.randn(32, 8), torch.arange(32) % 4)
        >>> a.dtype
        torch.int64
    """

    def __init__(self, margin: float = 0.2, *, distance: Distance | str | None = None) -> None:
        super().__init__(distance=distance)
        self.margin = _check_float("margin", margin)

    def mine(self, mat: torch.Tensor, labels: torch.Tensor, *, is_inverted: bool) -> Triplets:
        d = -mat if is_inverted else mat
        a, p, neg = _positive_pairs(labels)
        dap = d[a, p][:, None]
        dan = d[a]  # (n_pairs, batch)
        cond = neg[a] & (dan > dap) & (dan < dap + self.margin)
        return _triplets_where(a, p, cond)

    def __repr__(self) -> str:
        return f"SemiHardMiner(margin={self.margin:g}, distance={self.distance!r})"


class BatchHardMiner(Miner):
    """Batch-hard triplets: per anchor, its farthest positive and its closest negative.

    One triplet per anchor that has at least one positive and one negative
    (Hermans et al., "In Defense of the Triplet Loss for Person
    Re-Identification", 2017). Ties go to the lowest index.

    Example:
        >>> import torch
        >>> a, p, n = BatchHardMiner()(torch.randn(8, 4), torch.arange(8) % 2)
        >>> len(a)
        8
    """

    def mine(self, mat: torch.Tensor, labels: torch.Tensor, *, is_inverted: bool) -> Triplets:
        d = -mat if is_inverted else mat
        pos, neg = label_masks(labels)
        inf = torch.finfo(d.dtype).max
        hardest_p = d.masked_fill(~pos, -inf).argmax(dim=1)
        hardest_n = d.masked_fill(~neg, inf).argmin(dim=1)
        keep = pos.any(dim=1) & neg.any(dim=1)
        a = torch.nonzero(keep, as_tuple=True)[0]
        return a, hardest_p[a], hardest_n[a]


class AllPairsMiner(Miner):
    """All positive and all negative pairs: returns ``(a1, p, a2, n)`` (a pair miner).

    ``(a1[i], p[i])`` are the ordered positive pairs ``a1 != p`` with equal labels
    and ``(a2[j], n[j])`` the ordered negative pairs.

    Example:
        >>> import torch
        >>> a1, p, a2, n = AllPairsMiner()(torch.randn(4, 2), torch.tensor([0, 0, 1, 1]))
        >>> len(a1), len(a2)
        (4, 8)
    """

    returns_pairs = True

    def mine(
        self, mat: torch.Tensor, labels: torch.Tensor, *, is_inverted: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        pos, neg = label_masks(labels)
        a1, p = torch.nonzero(pos, as_tuple=True)
        a2, n = torch.nonzero(neg, as_tuple=True)
        return a1, p, a2, n


MINERS: dict[str, Any] = {
    "all": AllTripletsMiner,
    "hard": HardMiner,
    "semihard": SemiHardMiner,
    "batch_hard": BatchHardMiner,
    "all_pairs": AllPairsMiner,
}


def make_miner(value: Any, default: Miner, **kwargs: Any) -> Miner:
    """A :class:`Miner` from an instance, a name (``all``, ``hard``, ``semihard``,
    ``batch_hard``, ``all_pairs``), a pytorch-metric-learning miner (wrapped in
    :class:`PMLMiner`, its output converted to what the loss needs) or ``None``
    (``default``); ``kwargs`` go to the constructor of a named miner that takes them
    (e.g. ``margin``)."""
    if value is None:
        return default
    if isinstance(value, Miner):
        return value
    from embedlab.losses._pml_miner import PMLMiner, is_pml_miner

    if is_pml_miner(value):
        return PMLMiner(value, returns_pairs=default.returns_pairs)
    name = check_choice("miner", value, MINERS)
    cls = MINERS[name]
    if cls is SemiHardMiner:
        return SemiHardMiner(**kwargs)
    out: Miner = cls()
    return out
