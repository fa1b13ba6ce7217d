"""Compressed embedding tables for sparse features, one file per method.

Every table is a :class:`torch.nn.Module` built for a memory budget:
``make_table(name, fields, dim, compression=c)`` uses at most
``sum(cardinalities) * dim * 4 / c`` bytes, reported by ``memory_bytes()``.

Importing a method module registers it in ``TABLES``. Registered methods: ``full``,
``hash``, ``qr``, ``ue``, ``mde``, ``tt``, ``dhe``, ``robe``, ``int8``, ``int16`` (structure
fixed before training) and ``dnis``, ``autodim``, ``autosrh``, ``optembed``, ``pep``,
``deeplight``, ``alpt``, ``dpq``, ``mgqe``, ``adaemb``, ``dedup`` (structure learned in
training; multi-phase ones declare ``phases``).

Deployment: ``table.export(path)`` writes the deployable form as one safetensors file and
:func:`load_exported` reads it back as an inference module (:class:`ExportedTable`).
:class:`CompressedEmbedding` / :class:`CompressedEmbeddingBag` are ``nn.Embedding`` /
``nn.EmbeddingBag``-shaped wrappers over any method.
"""

from __future__ import annotations

from embedlab._validation import BudgetError
from embedlab.fields import Field
from embedlab.tables._base import EmbeddingTable, full_table_bytes
from embedlab.tables._export import ExportedTable, export_info, load_exported
from embedlab.tables._phase_state import PhaseState
from embedlab.tables._phases import PhaseContext
from embedlab.tables._registry import TABLES, check_table_spec, make_table, register_table
from embedlab.tables.adaemb import AdaEmbTable
from embedlab.tables.alpt import ALPTTable
from embedlab.tables.autodim import AutoDimTable
from embedlab.tables.autosrh import AutoSrhTable
from embedlab.tables.compressed_embedding import CompressedEmbedding, CompressedEmbeddingBag
from embedlab.tables.dedup import DedupTable
from embedlab.tables.deeplight import DeepLightTable
from embedlab.tables.dhe import DHETable
from embedlab.tables.dnis import DNISTable
from embedlab.tables.dpq import DPQTable
from embedlab.tables.full import FullTable
from embedlab.tables.hashing import HashTable
from embedlab.tables.mgqe import MGQETable
from embedlab.tables.mixed_dim import MixedDimTable
from embedlab.tables.multiplexed import UnifiedEmbeddingTable
from embedlab.tables.optembed import OptEmbedTable
from embedlab.tables.pep import PEPTable
from embedlab.tables.qr import QRTable
from embedlab.tables.quantized import Int8Table, Int16Table, QuantizedTable
from embedlab.tables.robe import ROBETable
from embedlab.tables.tt import TTTable

__all__ = [
    "TABLES",
    "ALPTTable",
    "AdaEmbTable",
    "AutoDimTable",
    "AutoSrhTable",
    "BudgetError",
    "CompressedEmbedding",
    "CompressedEmbeddingBag",
    "DHETable",
    "DNISTable",
    "DPQTable",
    "DedupTable",
    "DeepLightTable",
    "EmbeddingTable",
    "ExportedTable",
    "Field",
    "FullTable",
    "HashTable",
    "Int8Table",
    "Int16Table",
    "MGQETable",
    "MixedDimTable",
    "OptEmbedTable",
    "PEPTable",
    "PhaseContext",
    "PhaseState",
    "QRTable",
    "QuantizedTable",
    "ROBETable",
    "TTTable",
    "UnifiedEmbeddingTable",
    "check_table_spec",
    "export_info",
    "full_table_bytes",
    "load_exported",
    "make_table",
    "register_table",
]
