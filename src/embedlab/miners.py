"""Miners and the class-balanced sampler (re-exported from :mod:`embedlab.losses`).

Example:
    >>> from embedlab.miners import SemiHardMiner
    >>> SemiHardMiner(margin=0.2).margin
    0.2
"""

from __future__ import annotations

from embedlab.losses import PMLMiner
from embedlab.losses.miners import (
    AllPairsMiner,
    AllTripletsMiner,
    BatchHardMiner,
    HardMiner,
    Miner,
    SemiHardMiner,
)
from embedlab.losses.sampler import ClassBalancedSampler

__all__ = [
    "AllPairsMiner",
    "AllTripletsMiner",
    "BatchHardMiner",
    "ClassBalancedSampler",
    "HardMiner",
    "Miner",
    "PMLMiner",
    "SemiHardMiner",
]
