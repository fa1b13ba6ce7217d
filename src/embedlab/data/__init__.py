"""CTR data: the in-memory dataset, loaders per format and the synthetic generator."""

from __future__ import annotations

from embedlab.data._dataset import CTRDataset, CTRSplits
from embedlab.data.synthetic import make_ctr

__all__ = ["CTRDataset", "CTRSplits", "make_ctr"]
