"""pytorch-metric-learning miners inside embedlab losses.

A pml miner returns either triplets ``(a, p, n)`` or pairs ``(a1, p, a2, n)``
depending on its class. :class:`PMLMiner` calls it on the batch and converts its
output to the form the loss needs with pml's own converters
(``convert_to_triplets`` / ``convert_to_pairs``), so any pml miner works with
:class:`~embedlab.losses.TripletLoss` and :class:`~embedlab.losses.ContrastiveLoss`.

Example:
    >>> from pytorch_metric_learning import miners  # doctest: +SKIP
    >>> from embedlab.losses import TripletLoss
    >>> loss = TripletLoss(margin=0.2, miner=miners.MultiSimilarityMiner())  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import torch

from embedlab._validation import check_batch_labels, check_embeddings
from embedlab.losses.miners import Miner

__all__ = ["PMLMiner", "is_pml_miner"]


def is_pml_miner(value: Any) -> bool:
    """True for an instance of a pytorch-metric-learning miner (``BaseMiner`` subclass)."""
    for cls in type(value).__mro__:
        if cls.__module__.startswith("pytorch_metric_learning.miners") and cls.__name__ in (
            "BaseMiner",
            "BaseTupleMiner",
        ):
            return True
    return False


class PMLMiner(Miner):
    """A pytorch-metric-learning miner, its output converted to triplets or pairs.

    Args:
        miner: the pml miner instance; it mines with its own distance.
        returns_pairs: convert to pairs ``(a1, p, a2, n)`` (for pair losses) instead of
            triplets ``(a, p, n)``.
        triplets_per_anchor: the cap pml applies when it builds triplets from pairs.
    """

    external = True

    def __init__(self, miner: Any, *, returns_pairs: bool, triplets_per_anchor: int = 100) -> None:
        if not is_pml_miner(miner):
            raise TypeError(
                f"miner must be a pytorch-metric-learning miner, got {type(miner).__name__}"
            )
        super().__init__()
        self.miner = miner
        self.pairs = bool(returns_pairs)
        self.triplets_per_anchor = int(triplets_per_anchor)

    @property
    def returns_pairs(self) -> bool:  # type: ignore[override]
        return self.pairs

    def __call__(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Mine with the pml miner, then convert its indices with pml's converters."""
        from pytorch_metric_learning.utils import (  # type: ignore[import-untyped]
            loss_and_miner_utils as lmu,
        )

        emb = check_embeddings("embeddings", embeddings)
        lab = check_batch_labels(labels, emb.shape[0]).to(emb.device)
        with torch.no_grad():
            mined = self.miner(emb.detach(), lab)
        if self.pairs:
            out = lmu.convert_to_pairs(mined, lab)
        else:
            out = lmu.convert_to_triplets(mined, lab, t_per_anchor=self.triplets_per_anchor)
        return tuple(t.to(torch.int64) for t in out)

    def mine(
        self, mat: torch.Tensor, labels: torch.Tensor, *, is_inverted: bool
    ) -> tuple[torch.Tensor, ...]:
        """Not available: a pml miner needs the embeddings (call the miner instead)."""
        raise NotImplementedError("a pytorch-metric-learning miner mines from embeddings")

    def __repr__(self) -> str:
        kind = "pairs" if self.pairs else "triplets"
        return f"PMLMiner({type(self.miner).__name__}, as {kind})"
