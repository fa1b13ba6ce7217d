"""Every key a record of the ``ctr``, ``metric`` and ``retrieval`` suites may hold, with
its unit: the columns of :func:`~embedlab.bench.load_records` (nested keys as
``metrics.KEY``, ``timing.KEY``, ``params.KEY``). The README's records table is this list;
a test keeps both and the suites in step.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from embedlab.bench._record import BenchRecord

__all__ = ["RECORD_KEYS", "KeyDoc", "undocumented_keys"]


@dataclass(frozen=True)
class KeyDoc:
    """One documented column. ``name`` may hold ``*`` (``metrics.recall@*``)."""

    name: str
    unit: str
    suites: str
    meaning: str


_ALL = "all"
RECORD_KEYS: tuple[KeyDoc, ...] = (
    # the key of a run, and its outcome
    KeyDoc("suite", "-", _ALL, "ctr, metric, retrieval (also graph, filtered, multivector)"),
    KeyDoc("dataset", "-", _ALL, "data source name (frappe, digits, beir name, ...)"),
    KeyDoc("method", "-", _ALL, "table / loss / index spec as run (canonical form)"),
    KeyDoc("model", "-", _ALL, "CTR model, encoder (mlp, cnn) or embedding model"),
    KeyDoc("compression", "x", _ALL, "ctr: budget asked (full = 1); retrieval: float32 / RAM"),
    KeyDoc("seed", "-", _ALL, "seed of the run (init, batches; ctr: also the split)"),
    KeyDoc("config_hash", "hex", _ALL, "hash of the settings that change results (resume key)"),
    KeyDoc("memory_bytes", "bytes", _ALL, "table bytes; retrieval: RAM bytes per vector"),
    KeyDoc("status", "-", _ALL, "ok | infeasible (budget unreachable) | failed"),
    KeyDoc("error", "-", _ALL, "why a run is not ok (null when ok)"),
    KeyDoc("embedlab_version", "-", _ALL, "version that measured the run"),
    KeyDoc("source", "-", _ALL, "load_records only: the file the record came from"),
    # ctr
    KeyDoc("metrics.auc", "[0, 1]", "ctr", "test ROC AUC"),
    KeyDoc("metrics.logloss", "nats", "ctr", "test binary cross-entropy"),
    KeyDoc("metrics.gauc", "[0, 1]", "ctr", "test AUC averaged per user (sequence data)"),
    KeyDoc("metrics.valid_auc", "[0, 1]", "ctr", "best validation AUC (early stopping)"),
    KeyDoc("metrics.valid_logloss", "nats", "ctr", "validation logloss at the best epoch"),
    KeyDoc("metrics.auc_delta_vs_full", "AUC", "ctr", "auc - auc of full, same seed"),
    KeyDoc("timing.train_s", "s", _ALL, "training (ctr: all phases; retrieval: the index)"),
    KeyDoc("timing.samples_per_s", "samples/s", "ctr, metric", "training throughput"),
    KeyDoc("timing.samples_per_s_vs_full", "ratio", "ctr", "throughput / full's, same seed"),
    KeyDoc("timing.build_s", "s", "ctr, retrieval", "ctr: table + model; retrieval: train+add"),
    KeyDoc("timing.test_eval_s", "s", "ctr", "test-set evaluation"),
    KeyDoc("timing.tune_train_s", "s", "ctr", "--tune: training time of all candidates"),
    KeyDoc("params.table", "-", "ctr", "registered table name of the method"),
    KeyDoc("params.dim", "-", _ALL, "embedding dimension"),
    KeyDoc("params.full_bytes", "bytes", "ctr", "bytes of the float32 full table"),
    KeyDoc("params.budget_bytes", "bytes", "ctr", "full_bytes / compression"),
    KeyDoc("params.compression_reached", "x", "ctr", "full_bytes / memory_bytes"),
    KeyDoc("params.model_dense_bytes", "bytes", "ctr", "model parameters outside the table"),
    KeyDoc("params.epochs", "-", "ctr, metric", "maximum epochs"),
    KeyDoc("params.epochs_run", "-", "ctr", "epochs trained (early stopping)"),
    KeyDoc("params.best_epoch", "-", "ctr, metric", "epoch whose weights were kept"),
    KeyDoc("params.batch_size", "-", "ctr, metric", "training batch size"),
    KeyDoc("params.lr", "-", "ctr, metric", "Adam learning rate"),
    KeyDoc("params.patience", "epochs", "ctr", "early-stopping patience on valid AUC"),
    KeyDoc("params.embedding_l2", "-", "ctr", "L2 weight on looked-up embeddings"),
    KeyDoc("params.weight_decay", "-", "ctr", "Adam weight decay of the dense net"),
    KeyDoc("params.dropout", "-", "ctr", "model dropout set by --tune (null: default)"),
    KeyDoc("params.tune", "-", "ctr", "--tune: every candidate's settings and valid scores"),
    KeyDoc("params.n_train", "rows", "ctr, metric", "training rows / samples"),
    KeyDoc("params.n_valid", "rows", "ctr", "validation rows"),
    KeyDoc("params.n_test", "rows", "ctr, metric", "test rows / samples"),
    KeyDoc("params.device", "-", "ctr, metric", "torch device trained on (--device)"),
    KeyDoc("params.split_seed", "-", "ctr", "seed of the data split; null: one fixed split"),
    KeyDoc("params.oracle_auc", "[0, 1]", "ctr", "AUC of the true probabilities (synthetic)"),
    KeyDoc("params.phases", "-", "ctr", "per training phase of learned-structure tables"),
    KeyDoc(
        "params.history", "-", "ctr", "per epoch: epoch, (phase,) train_loss, valid_auc/logloss"
    ),
    KeyDoc("params.table_*", "-", "ctr", "the table's own description (describe())"),
    # metric
    KeyDoc("metrics.precision_at_1", "[0, 1]", "metric", "leave-one-out P@1, unseen classes"),
    KeyDoc("metrics.map_at_r", "[0, 1]", "metric", "MAP@R"),
    KeyDoc("metrics.r_precision", "[0, 1]", "metric", "R-precision"),
    KeyDoc("metrics.recall_at_10", "[0, 1]", "metric", "a same-class sample in the top 10"),
    KeyDoc("metrics.nmi", "[0, 1]", "metric", "k-means NMI"),
    KeyDoc("metrics.ami", "[-1, 1]", "metric", "k-means adjusted mutual information"),
    KeyDoc("timing.eval_s", "s", "metric", "embedding + retrieval + clustering of test"),
    KeyDoc("params.embedding_dim", "-", "metric", "dimension of the vectors evaluated"),
    KeyDoc("params.n_train_classes", "-", "metric", "classes seen in training"),
    KeyDoc("params.n_test_classes", "-", "metric", "unseen classes evaluated"),
    KeyDoc("params.protocol", "-", "metric", "evaluation protocol, in words"),
    KeyDoc("params.encoder", "-", "metric", "none for raw_pixels"),
    KeyDoc("params.loss", "-", "metric", "registered loss name"),
    KeyDoc("params.input_kind", "-", "metric", "what the loss consumes (labels, pairs, ...)"),
    KeyDoc("params.steps", "-", "metric", "optimizer steps"),
    KeyDoc("params.loss_params", "-", "metric", "trainable parameters of the loss"),
    KeyDoc("params.valid_precision_at_1", "[0, 1]", "metric", "best held-out P@1"),
    # retrieval
    KeyDoc("metrics.recall@100", "[0, 1]", "retrieval", "share of qrels-relevant docs in top 100"),
    KeyDoc("metrics.recall@*", "[0, 1]", "retrieval", "recall@k against exact search"),
    KeyDoc("metrics.ndcg@10", "[0, 1]", "retrieval", "nDCG@10 from graded qrels"),
    KeyDoc("metrics.ndcg@10_vs_flat", "ratio", "retrieval", "ndcg@10 / exact search's"),
    KeyDoc("timing.qps_1thread", "queries/s", "retrieval", "batched search, 1 thread"),
    KeyDoc("timing.qps_all_threads", "queries/s", "retrieval", "batched search, all threads"),
    KeyDoc("timing.p50_ms", "ms", "retrieval", "median one-query latency, 1 thread"),
    KeyDoc("timing.p99_ms", "ms", "retrieval", "99th percentile one-query latency"),
    KeyDoc("params.spec", "-", "retrieval", "index spec"),
    KeyDoc("params.k", "-", "retrieval", "k of recall@k"),
    KeyDoc("params.metric", "-", "retrieval", "cos | ip | l2"),
    KeyDoc("params.n_corpus", "vectors", "retrieval", "indexed vectors"),
    KeyDoc("params.n_queries", "queries", "retrieval", "real queries"),
    KeyDoc("params.n_exact_queries", "queries", "retrieval", "queries of recall@k"),
    KeyDoc("params.exact_queries", "-", "retrieval", "holdout | queries"),
    KeyDoc("params.n_latency_queries", "queries", "retrieval", "one-query searches timed"),
    KeyDoc("params.timing_repeats", "-", "retrieval", "batched searches; QPS of the best"),
    KeyDoc("params.ram_bytes_total", "bytes", "retrieval", "index memory_bytes()"),
    KeyDoc("params.ram_bytes_per_vector", "bytes", "retrieval", "ram_bytes_total / n_corpus"),
    KeyDoc("params.disk_bytes_total", "bytes", "retrieval", "bytes kept on disk (re-ranking)"),
    KeyDoc("params.disk_bytes_per_vector", "bytes", "retrieval", "disk_bytes_total / n_corpus"),
    KeyDoc("params.float32_bytes_per_vector", "bytes", "retrieval", "4 x dim"),
    KeyDoc("params.threads_all", "-", "retrieval", "threads of the all-threads QPS"),
    KeyDoc("params.ndcg@10_flat", "[0, 1]", "retrieval", "nDCG@10 of exact search"),
)


def undocumented_keys(record: BenchRecord) -> list[str]:
    """The flattened keys of ``record`` that :data:`RECORD_KEYS` does not list."""
    from embedlab.bench._records_io import flatten_record

    names = [k.name for k in RECORD_KEYS]
    return [
        key
        for key in flatten_record(record)
        if not any(fnmatch.fnmatchcase(key, name) for name in names)
    ]
