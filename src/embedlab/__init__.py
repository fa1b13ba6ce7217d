"""embedlab: learn, shrink, search and understand embeddings.

One family per job, each with one registry and a spec-string constructor:

- learn: ``make_loss`` (metric / contrastive losses, ``embedlab.losses``), ``MetricTrainer``
  and ``CTRTrainer`` (``embedlab.training``), ``embed_texts`` (any sentence-transformers
  model, offline; ``embedlab.text``), ``SentenceTransformerLoss`` (``embedlab.bridges``);
- shrink: ``make_table`` / ``CompressedEmbedding`` (compressed embedding tables,
  ``embedlab.tables``) and the CTR models (``make_model``, ``embedlab.models``);
- search: ``index_factory`` / ``load_index`` (``embedlab.index``);
- understand: ``analyze_embeddings`` / ``compare_embeddings`` (``embedlab.analysis``),
  ``make_clusterer`` (``embedlab.cluster``), graph embeddings (``embedlab.graph``);
- measure: the benchmark suites and records (``embedlab.bench``: ``load_records``),
  ``embedlab.report``; the CLI is ``embedlab --help``.

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
    from embedlab.analysis import analyze_embeddings, compare_embeddings
    from embedlab.bench import (
        BenchRecord,
        CTRBenchConfig,
        load_records,
        read_records,
        run_ctr_bench,
    )
    from embedlab.bridges import SentenceTransformerLoss
    from embedlab.cluster import make_clusterer
    from embedlab.data import CTRDataset, CTRSplits, load_ctr, make_ctr
    from embedlab.fields import Field
    from embedlab.index import index_factory, load_index
    from embedlab.losses import make_loss
    from embedlab.models import MODELS, make_model
    from embedlab.tables import (
        TABLES,
        CompressedEmbedding,
        CompressedEmbeddingBag,
        EmbeddingTable,
        load_exported,
        make_table,
    )
    from embedlab.text import embed_texts
    from embedlab.training import CTRTrainer, MetricTrainer, auc_score, log_loss

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
    "MetricTrainer": "embedlab.training",
    "analyze_embeddings": "embedlab.analysis",
    "compare_embeddings": "embedlab.analysis",
    "load_records": "embedlab.bench",
    "SentenceTransformerLoss": "embedlab.bridges",
    "make_clusterer": "embedlab.cluster",
    "index_factory": "embedlab.index",
    "load_index": "embedlab.index",
    "make_loss": "embedlab.losses",
    "embed_texts": "embedlab.text",
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
    "MetricTrainer",
    "SentenceTransformerLoss",
    "__version__",
    "analyze_embeddings",
    "auc_score",
    "compare_embeddings",
    "embed_texts",
    "index_factory",
    "load_ctr",
    "load_exported",
    "load_index",
    "load_records",
    "log_loss",
    "make_clusterer",
    "make_ctr",
    "make_loss",
    "make_model",
    "make_table",
    "read_records",
    "run_ctr_bench",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
