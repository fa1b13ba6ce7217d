"""CTR data: the in-memory dataset, loaders per format and the synthetic generator.

``load_ctr("frappe:PATH", seed=0)`` is the one entry point for specs; the
loaders (``load_libfm``, ``load_criteo``, ``load_avazu``, ``load_movielens``)
read one format each into a :class:`CTRDataset`. Logs larger than memory:
``prepare_ctr`` (``embedlab data prepare``) writes Parquet shards once, and
:class:`CTRShards` reads them lazily in batches (``iter_batches``, ``dataset``).
Behaviour-sequence data (a ``history`` per row, for DIN):
``load_movielens_sequences``, ``make_sequence_ctr``.
Labelled dense data for metric learning and analysis: ``load_mnist`` (IDX files)
and ``load_digits`` (bundled).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from embedlab._lazy import lazy_exports

if TYPE_CHECKING:
    from embedlab.data._dataset import CTRDataset, CTRSplits
    from embedlab.data._encode import DataPathError
    from embedlab.data._sources import DATA_SOURCES, DataSource, load_ctr, parse_data_spec
    from embedlab.data.avazu import load_avazu
    from embedlab.data.criteo import load_criteo
    from embedlab.data.csvlog import load_csv
    from embedlab.data.ctr_shards import CTRBatch, CTRShards, CTRShardsDataset
    from embedlab.data.labeled import LabeledData
    from embedlab.data.libfm import load_libfm
    from embedlab.data.mnist import load_digits, load_mnist, read_idx
    from embedlab.data.movielens import load_movielens
    from embedlab.data.prepare import prepare_ctr
    from embedlab.data.retrieval import RETRIEVAL_SOURCES, RetrievalData, load_retrieval
    from embedlab.data.sequences import (
        behaviour_histories,
        load_movielens_sequences,
        make_sequence_ctr,
        temporal_split,
    )
    from embedlab.data.shards import (
        NpyShard,
        iter_npy_shards,
        list_npy_shards,
        sample_npy_shards,
        write_npy_shards,
    )
    from embedlab.data.synthetic import make_ctr

# Every name loads its module on first use: reading .npy shards (index builds) imports
# neither torch, pandas nor pyarrow, and ``import embedlab.data`` costs nothing.
_LAZY = {
    "behaviour_histories": "embedlab.data.sequences",
    "CTRBatch": "embedlab.data.ctr_shards",
    "CTRDataset": "embedlab.data._dataset",
    "CTRShards": "embedlab.data.ctr_shards",
    "CTRShardsDataset": "embedlab.data.ctr_shards",
    "CTRSplits": "embedlab.data._dataset",
    "DATA_SOURCES": "embedlab.data._sources",
    "DataPathError": "embedlab.data._encode",
    "DataSource": "embedlab.data._sources",
    "iter_npy_shards": "embedlab.data.shards",
    "LabeledData": "embedlab.data.labeled",
    "list_npy_shards": "embedlab.data.shards",
    "load_avazu": "embedlab.data.avazu",
    "load_criteo": "embedlab.data.criteo",
    "load_csv": "embedlab.data.csvlog",
    "load_ctr": "embedlab.data._sources",
    "load_digits": "embedlab.data.mnist",
    "load_libfm": "embedlab.data.libfm",
    "load_mnist": "embedlab.data.mnist",
    "load_movielens": "embedlab.data.movielens",
    "load_movielens_sequences": "embedlab.data.sequences",
    "load_retrieval": "embedlab.data.retrieval",
    "make_ctr": "embedlab.data.synthetic",
    "make_sequence_ctr": "embedlab.data.sequences",
    "NpyShard": "embedlab.data.shards",
    "parse_data_spec": "embedlab.data._sources",
    "prepare_ctr": "embedlab.data.prepare",
    "read_idx": "embedlab.data.mnist",
    "RETRIEVAL_SOURCES": "embedlab.data.retrieval",
    "RetrievalData": "embedlab.data.retrieval",
    "sample_npy_shards": "embedlab.data.shards",
    "temporal_split": "embedlab.data.sequences",
    "write_npy_shards": "embedlab.data.shards",
}

__all__ = [
    "DATA_SOURCES",
    "RETRIEVAL_SOURCES",
    "CTRBatch",
    "CTRDataset",
    "CTRShards",
    "CTRShardsDataset",
    "CTRSplits",
    "DataPathError",
    "DataSource",
    "LabeledData",
    "NpyShard",
    "RetrievalData",
    "behaviour_histories",
    "iter_npy_shards",
    "list_npy_shards",
    "load_avazu",
    "load_criteo",
    "load_csv",
    "load_ctr",
    "load_digits",
    "load_libfm",
    "load_mnist",
    "load_movielens",
    "load_movielens_sequences",
    "load_retrieval",
    "make_ctr",
    "make_sequence_ctr",
    "parse_data_spec",
    "prepare_ctr",
    "read_idx",
    "sample_npy_shards",
    "temporal_split",
    "write_npy_shards",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)
