"""CTR models, one file per model, all built around an injected embedding table.

``make_model("deepfm(hidden=400-400)", table)`` builds any registered model;
every model maps ids ``(batch, n_fields)`` (and optional dense features) to
logits ``(batch,)``. See :class:`CTRModel` for why first-order terms are read
out of the embeddings rather than stored per id.
"""

from __future__ import annotations

from embedlab.models._base import CTRModel
from embedlab.models._dice import Dice
from embedlab.models._registry import MODELS, hyper_parameters, make_model, register_model
from embedlab.models.autoint import AutoInt, AutoIntPlus
from embedlab.models.dcnv2 import DCNv2
from embedlab.models.deepfm import DeepFM
from embedlab.models.din import DIN, count_ids
from embedlab.models.fm import FM
from embedlab.models.lr import LR

__all__ = [
    "DIN",
    "FM",
    "LR",
    "MODELS",
    "AutoInt",
    "AutoIntPlus",
    "CTRModel",
    "DCNv2",
    "DeepFM",
    "Dice",
    "count_ids",
    "hyper_parameters",
    "make_model",
    "register_model",
]
