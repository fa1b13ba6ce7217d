"""Trainers and metrics: :class:`CTRTrainer` for CTR models, exact AUC and log loss."""

from __future__ import annotations

from embedlab.training.ctr import CTRTrainer, TrainResult
from embedlab.training.metrics import auc_score, log_loss

__all__ = ["CTRTrainer", "TrainResult", "auc_score", "log_loss"]
