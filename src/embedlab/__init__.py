"""embedlab: learn, shrink, search and understand embeddings.

The public API is re-exported here; implementations live in the subpackages
(``embedlab.tables``, ``embedlab.models``, ``embedlab.data``,
``embedlab.training``, ``embedlab.bench``, ``embedlab.report``).
"""

from __future__ import annotations

__version__ = "0.1.0"

from embedlab._validation import BudgetError
from embedlab.bench import BenchRecord, CTRBenchConfig, read_records, run_ctr_bench
from embedlab.data import CTRDataset, CTRSplits, load_ctr, make_ctr
from embedlab.models import MODELS, make_model
from embedlab.tables import (
    TABLES,
    CompressedEmbedding,
    CompressedEmbeddingBag,
    EmbeddingTable,
    Field,
    load_exported,
    make_table,
)
from embedlab.training import CTRTrainer, auc_score, log_loss

__all__ = [
    "MODELS",
    "TABLES",
    "BenchRecord",
    "BudgetError",
    "CTRBenchConfig",
    "CTRDataset",
    "CTRSplits",
    "CTRTrainer",
    "CompressedEmbedding",
    "CompressedEmbeddingBag",
    "EmbeddingTable",
    "Field",
    "__version__",
    "auc_score",
    "load_ctr",
    "load_exported",
    "log_loss",
    "make_ctr",
    "make_model",
    "make_table",
    "read_records",
    "run_ctr_bench",
]
