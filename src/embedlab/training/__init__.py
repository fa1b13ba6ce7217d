"""Trainers and metrics.

- :class:`CTRTrainer` trains CTR models (exact AUC and log loss in ``metrics``);
- :class:`MetricTrainer` trains encoders with any loss of :mod:`embedlab.losses`;
- ``compat`` holds backward-compatible training (BT^2).
"""

from __future__ import annotations

from embedlab.training.ctr import CTRTrainer, TrainResult
from embedlab.training.encoders import ConvEncoder, MLPEncoder, make_encoder
from embedlab.training.metric import MetricTrainer, MetricTrainResult, embed, load_checkpoint
from embedlab.training.metrics import auc_score, gauc_score, log_loss

__all__ = [
    "CTRTrainer",
    "ConvEncoder",
    "MLPEncoder",
    "MetricTrainResult",
    "MetricTrainer",
    "TrainResult",
    "auc_score",
    "embed",
    "gauc_score",
    "load_checkpoint",
    "log_loss",
    "make_encoder",
]
