"""Compressed embedding tables for sparse features, one file per method.

Every table is a :class:`torch.nn.Module` built for a memory budget:
``make_table(name, fields, dim, compression=c)`` uses at most
``sum(cardinalities) * dim * 4 / c`` bytes, reported by ``memory_bytes()``.
"""

from __future__ import annotations

from embedlab._validation import BudgetError
from embedlab.tables import full  # noqa: F401  (registers the method)
from embedlab.tables._base import EmbeddingTable, full_table_bytes
from embedlab.tables._field import Field
from embedlab.tables._registry import TABLES, make_table, register_table
from embedlab.tables.full import FullTable

__all__ = [
    "TABLES",
    "BudgetError",
    "EmbeddingTable",
    "Field",
    "FullTable",
    "full_table_bytes",
    "make_table",
    "register_table",
]
