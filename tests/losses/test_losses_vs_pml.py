"""Our TripletLoss + SemiHardMiner and SupConLoss equal pytorch-metric-learning's.

Conventions: both sides use squared L2 on normalised embeddings for the
triplet case (PML's default is non-squared L2). PML averages over the triplets
with a non-zero loss; semi-hard triplets all have a positive hinge, so our
plain mean agrees (``reduction="mean_nonzero"`` reproduces PML in general).
PML's semi-hard rule is ``d_ap < d_an <= d_ap + margin`` where FaceNet's (ours)
is strict; the boundary has measure zero on random data.
"""

from __future__ import annotations

import pytest
import torch

from embedlab.losses import SupConLoss, TripletLoss
from embedlab.miners import SemiHardMiner

pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
pml_dist = pytest.importorskip("pytorch_metric_learning.distances")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_triplet_semihard_equals_pml(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 16, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 8, (64,), generator=gen)
    ours = TripletLoss(margin=0.2, miner=SemiHardMiner(margin=0.2))(x, y)
    sq = pml_dist.LpDistance(power=2)
    miner = pml_miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard", distance=sq)
    ref = pml_losses.TripletMarginLoss(margin=0.2, distance=sq)(x, y, miner(x, y))
    assert float(ours) == pytest.approx(float(ref), rel=1e-9)
    ours_all = TripletLoss(margin=0.2, reduction="mean_nonzero")(x, y)
    ref_all = pml_losses.TripletMarginLoss(margin=0.2, distance=sq)(x, y)
    assert float(ours_all) == pytest.approx(float(ref_all), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_supcon_equals_pml(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 16, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 8, (64,), generator=gen)
    ours = SupConLoss(temperature=0.1)(x, y)
    ref = pml_losses.SupConLoss(temperature=0.1)(x, y)
    assert float(ours) == pytest.approx(float(ref), rel=1e-9)
