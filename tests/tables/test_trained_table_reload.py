"""A table trained through all its phases (search, prune, retrain...) reloads from its
saved weights into a freshly built table of the same spec, as ``table_from_run`` and
``load_trained_ctr`` do, and gives bit-identical embeddings and the same memory.

The phase ends change structure (pruned rows, merged duplicates, dropped codebook
queries, kept dims), so this checks each table's load hooks after real training, not
only the untrained round trip of the conformance suite.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
import torch
from safetensors.torch import load, save

from embedlab.data import CTRSplits, make_ctr
from embedlab.models import make_model
from embedlab.tables import TABLES, EmbeddingTable, make_table
from embedlab.training import CTRTrainer

MULTI_PHASE = sorted(n for n in TABLES if len(TABLES.get(n).phases) > 1)
TABLE_KWARGS: dict[str, dict[str, Any]] = {"optembed": {"population": 4, "max_evals": 8}}


@cache
def splits() -> CTRSplits:
    return make_ctr(2400, (80, 40, 12, 6), seed=5).split(seed=5)


def fresh(method: str) -> EmbeddingTable:
    fields = splits().fields
    return make_table(
        method, fields, dim=8, compression=4.0, seed=0, **TABLE_KWARGS.get(method, {})
    )


def test_there_are_multi_phase_tables() -> None:
    assert len(MULTI_PHASE) >= 5, MULTI_PHASE


@pytest.mark.parametrize("method", MULTI_PHASE)
def test_trained_table_reloads_into_a_fresh_one(method: str) -> None:
    torch.manual_seed(0)
    table = fresh(method)
    model = make_model("deepfm(hidden=16)", table, seed=0)
    trainer = CTRTrainer(epochs=2, batch_size=256, patience=None, progress=False)
    result = trainer.fit(model, splits().train, splits().valid)
    assert [p["name"] for p in result.phases] == list(table.phases)  # every phase ran
    assert table.memory_bytes() <= table.budget_bytes
    table.eval()
    state = load(save({k: v.detach().contiguous() for k, v in table.state_dict().items()}))
    other = fresh(method)
    other.load_state_dict(state)
    other.eval()
    ids = torch.as_tensor(splits().test.ids[:512])
    with torch.no_grad():
        assert torch.equal(table(ids), other(ids))
    assert other.memory_bytes() == table.memory_bytes()
