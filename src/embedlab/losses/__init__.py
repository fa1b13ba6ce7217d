"""Metric and contrastive losses, one file per loss, with distances, miners and a sampler.

Every loss is a :class:`MetricLoss` (a ``torch.nn.Module``) registered in
``LOSSES``; ``make_loss("triplet(margin=0.1)", dim=64, n_classes=10)`` builds
one by name. ``input_kind`` tells what ``forward`` takes (``"labels"``,
``"views"`` or ``"pairs"``).
"""

from __future__ import annotations

from embedlab.losses._base import InputKind, MetricLoss, NoPairsWarning
from embedlab.losses._pml_miner import PMLMiner
from embedlab.losses._registry import LOSSES, make_loss, register_loss
from embedlab.losses.c2lr import C2LRLoss, weighted_simclr
from embedlab.losses.contrastive import ContrastiveLoss
from embedlab.losses.distances import (
    CosineSimilarity,
    Distance,
    DotProductSimilarity,
    LpDistance,
)
from embedlab.losses.dsl import DSLLoss
from embedlab.losses.ebv import EBVLoss, generate_ebv
from embedlab.losses.ecaml import ECAMLLoss
from embedlab.losses.geodesic_mixup import GeodesicMixupLoss, slerp
from embedlab.losses.hydra import HydraLoss
from embedlab.losses.hypcd import HypCDLoss
from embedlab.losses.icnn import ICNNLoss
from embedlab.losses.infonce import InfoNCELoss
from embedlab.losses.kalm import KaLMLoss
from embedlab.losses.matryoshka import MatryoshkaLoss
from embedlab.losses.mcr2 import MCR2Loss, coding_rate, membership_coding_rate
from embedlab.losses.metrix import MetrixLoss
from embedlab.losses.mimix import MIMixLoss, mix_hidden
from embedlab.losses.miners import (
    AllPairsMiner,
    AllTripletsMiner,
    BatchHardMiner,
    HardMiner,
    Miner,
    SemiHardMiner,
)
from embedlab.losses.mv_dhel import MVDHELLoss
from embedlab.losses.mv_infonce import MVInfoNCELoss
from embedlab.losses.poincare import PoincareDistance, expmap0
from embedlab.losses.proto_triplet import ProtoTripletLoss
from embedlab.losses.sampler import ClassBalancedSampler
from embedlab.losses.snowflake import NeuralSnowflake
from embedlab.losses.starbucks import StarbucksLoss
from embedlab.losses.supcon import SupConLoss
from embedlab.losses.supremix import SupReMixLoss
from embedlab.losses.triplet import TripletLoss

__all__ = [
    "LOSSES",
    "AllPairsMiner",
    "AllTripletsMiner",
    "BatchHardMiner",
    "C2LRLoss",
    "ClassBalancedSampler",
    "ContrastiveLoss",
    "CosineSimilarity",
    "DSLLoss",
    "Distance",
    "DotProductSimilarity",
    "EBVLoss",
    "ECAMLLoss",
    "GeodesicMixupLoss",
    "HardMiner",
    "HydraLoss",
    "HypCDLoss",
    "ICNNLoss",
    "InfoNCELoss",
    "InputKind",
    "KaLMLoss",
    "LpDistance",
    "MCR2Loss",
    "MIMixLoss",
    "MVDHELLoss",
    "MVInfoNCELoss",
    "MatryoshkaLoss",
    "MetricLoss",
    "MetrixLoss",
    "Miner",
    "NeuralSnowflake",
    "NoPairsWarning",
    "PMLMiner",
    "PoincareDistance",
    "ProtoTripletLoss",
    "SemiHardMiner",
    "StarbucksLoss",
    "SupConLoss",
    "SupReMixLoss",
    "TripletLoss",
    "coding_rate",
    "expmap0",
    "generate_ebv",
    "make_loss",
    "membership_coding_rate",
    "mix_hidden",
    "register_loss",
    "slerp",
    "weighted_simclr",
]
