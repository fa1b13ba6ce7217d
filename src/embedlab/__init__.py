"""embedlab: learn, shrink, search and understand embeddings.

The public API is re-exported here; implementations live in the subpackages
(``embedlab.tables``, ``embedlab.models``, ``embedlab.data``,
``embedlab.training``, ``embedlab.bench``, ``embedlab.report``, ``embedlab.index``,
``embedlab.losses``, ``embedlab.analysis``, ``embedlab.graph``).

The names below are loaded on first use (PEP 562), so ``import embedlab.index`` does not
pay for torch, pandas and the CTR benchmark; ``from embedlab import make_table`` works as
before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedlab._lazy import lazy_exports

__version__ = "0.1.0"

if TYPE_CHECKING:
    from embedlab._validation import BudgetError
    from embedlab.bench import BenchRecord, CTRBenchConfig, read_records, run_ctr_bench
    from embedlab.data import CTRDataset, CTRSplits, load_ctr, make_ctr
    from embedlab.fields import Field
    from embedlab.models import MODELS, make_model
    from embedlab.tables import (
        TABLES,
        CompressedEmbedding,
        CompressedEmbeddingBag,
        EmbeddingTable,
        load_exported,
        make_table,
    )
    from embedlab.training import CTRTrainer, auc_score, log_loss

#: public name -> the module that defines it
_LAZY: dict[str, str] = {
    "BudgetError": "embedlab._validation",
    "BenchRecord": "embedlab.bench",
    "CTRBenchConfig": "embedlab.bench",
    "read_records": "embedlab.bench",
    "run_ctr_bench": "embedlab.bench",
    "CTRDataset": "embedlab.data",
    "CTRSplits": "embedlab.data",
    "load_ctr": "embedlab.data",
    "make_ctr": "embedlab.data",
    "Field": "embedlab.fields",
    "MODELS": "embedlab.models",
    "make_model": "embedlab.models",
    "TABLES": "embedlab.tables",
    "EmbeddingTable": "embedlab.tables",
    "make_table": "embedlab.tables",
    "CompressedEmbedding": "embedlab.tables",
    "CompressedEmbeddingBag": "embedlab.tables",
    "load_exported": "embedlab.tables",
    "CTRTrainer": "embedlab.training",
    "auc_score": "embedlab.training",
    "log_loss": "embedlab.training",
}

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


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
