"""Trainers and metrics.

- :class:`CTRTrainer` trains CTR models (exact AUC and log loss in ``metrics``);
- :class:`DistributedCTRTrainer` trains them on streamed batches (a :class:`BatchSource`),
  one process or DDP across the ranks of a ``torchrun`` launch, with per-epoch checkpoints;
- :class:`MetricTrainer` trains encoders with any loss of :mod:`embedlab.losses`;
- ``compat`` holds backward-compatible training (BT^2);
- ``soft_equivariance``: one equivariance regulariser per symmetry type, levels tuned in training;
- ``task_vectors``: task vectors, task arithmetic and aTLAS (learned blockwise coefficients).
- ``diffusion``: a tiny DDPM whose U-Net block features are linear-probed per noise step.
- ``smae``: Starbucks' 2D Matryoshka masked-LM pre-training (GPU; tiny configs on CPU).
"""

from __future__ import annotations

from embedlab.training._dist import (
    DistributedRunError,
    init_distributed,
    rank_world,
    shutdown_distributed,
)
from embedlab.training._run_checkpoint import EpochState, load_run_checkpoint, save_run_checkpoint
from embedlab.training._stream import BatchSource, CTRBatchLike, MemorySource, TensorBatch
from embedlab.training.ctr import CTRTrainer, TrainResult
from embedlab.training.distributed import DistributedCTRTrainer
from embedlab.training.encoders import ConvEncoder, MLPEncoder, make_encoder
from embedlab.training.metric import MetricTrainer, MetricTrainResult, embed, load_checkpoint
from embedlab.training.metrics import auc_score, gauc_score, log_loss
from embedlab.training.soft_equivariance import (
    SoftEquivarianceRegularizer,
    Symmetry,
    equivariance_error,
    fit_soft_equivariant,
)

__all__ = [
    "BatchSource",
    "CTRBatchLike",
    "CTRTrainer",
    "ConvEncoder",
    "DistributedCTRTrainer",
    "DistributedRunError",
    "EpochState",
    "MLPEncoder",
    "MemorySource",
    "MetricTrainResult",
    "MetricTrainer",
    "SoftEquivarianceRegularizer",
    "Symmetry",
    "TensorBatch",
    "TrainResult",
    "auc_score",
    "embed",
    "equivariance_error",
    "fit_soft_equivariant",
    "gauc_score",
    "init_distributed",
    "load_checkpoint",
    "load_run_checkpoint",
    "log_loss",
    "make_encoder",
    "rank_world",
    "save_run_checkpoint",
    "shutdown_distributed",
]
