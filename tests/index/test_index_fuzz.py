"""Fuzzing the index protocol and its persistence (hypothesis).

Every case ends in exactly one of: a result that satisfies the protocol's invariants, or a
clear error (``ValueError`` / ``TypeError`` with a message). Anything else — another
exception, a result that breaks an invariant, a file outside the index changed — fails the
test. The tallies per family are printed at the end of the session (``pytest -s``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedlab.index import index_factory, load_index
from embedlab.index._base import MAX_PADDING
from embedlab.index._store import canonical_checksum
from embedlab.index.io import data_folder

DIM = 8
SPECS = [
    "Flat",
    "Int8",
    "Binary",
    "PQ2x4",
    "Matryoshka4",
    "Binary,Rerank(Flat,k_factor=3)",
    "Int8,Rerank(Flat)",
    "BEBR1(epochs=1,hidden=8,max_train=64)",
    "BAE8(epochs=1,hidden=8,max_train=64)",
    "MUVERA(r=2,k=2,p=4),Rerank(Chamfer)",
    "IVF4,Flat",
    "IVF4,PQ2x4",
    "IVF4,Binary,Rerank(Flat)",
    "HNSW4",
    "HNSW4,Int8",
]
TALLY: Counter[tuple[str, str]] = Counter()
FUZZ = settings(
    max_examples=int(os.environ.get("EMBEDLAB_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    for family in sorted({f for f, _ in TALLY}):
        counts = {o: n for (f, o), n in TALLY.items() if f == family}
        print(f"\nfuzz {family}: {sum(counts.values())} cases, {counts}")


def _clear(exc: BaseException) -> bool:
    return isinstance(exc, ValueError | TypeError) and len(str(exc)) > 10


@st.composite
def matrices(draw: st.DrawFn, max_rows: int = 40) -> np.ndarray:
    n = draw(st.integers(0, max_rows))
    seed = draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    kind = draw(st.sampled_from(["normal", "normal", "nan", "inf", "zeros", "dupes", "huge"]))
    if n and kind == "nan":
        x[draw(st.integers(0, n - 1)), draw(st.integers(0, DIM - 1))] = np.nan
    elif n and kind == "inf":
        x[draw(st.integers(0, n - 1)), 0] = -np.inf
    elif kind == "zeros":
        x[: n // 2] = 0.0
    elif kind == "dupes":
        x[:] = x[:1] if n else x
    elif kind == "huge":
        x *= 1e30
    return x


# ----------------------------------------------------------------------------- protocol
@FUZZ
@given(
    spec=st.sampled_from(SPECS),
    metric=st.sampled_from(["cos", "ip", "l2"]),
    x=matrices(),
    q=matrices(max_rows=5),
    k=st.one_of(st.integers(-2, 50), st.sampled_from([10**6, 10**12, 2**63 - 1])),
)
def test_protocol_fuzz(spec: str, metric: str, x: np.ndarray, q: np.ndarray, k: int) -> None:
    family = spec.split(",")[0].split("(")[0].rstrip("0123456789x")
    try:
        index = index_factory(DIM, spec, metric=metric)  # type: ignore[arg-type]
        index.train(x)
        index.add(x)
        scores, ids = index.search(q, k)
    except Exception as exc:
        if not _clear(exc):
            TALLY[(family, "crash")] += 1
            raise
        bad_input = not np.isfinite(x).all() or not np.isfinite(q).all() or k < 1
        TALLY[(family, "clear error")] += 1
        if not bad_input and x.shape[0] >= 256 and "train" in str(exc):
            raise  # a valid input the index should have taken
        return
    TALLY[(family, "ok")] += 1
    # NaN/inf in the data or the queries must never be accepted silently
    assert np.isfinite(x).all() and np.isfinite(q).all(), "non-finite input was accepted"
    width = min(k, max(x.shape[0], MAX_PADDING))
    assert scores.shape == ids.shape == (q.shape[0], width)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    valid = ids >= 0
    assert set(ids[valid].tolist()) <= set(range(x.shape[0]))
    assert not np.isnan(scores).any()
    assert np.isneginf(scores[~valid]).all()
    for row in ids:  # no id twice in one result list
        got = row[row >= 0]
        assert got.size == np.unique(got).size
    if spec == "Flat" and x.shape[0] and q.shape[0] and metric != "cos":
        ref = q @ x.T if metric == "ip" else -((q[:, None, :] - x[None]) ** 2).sum(-1)
        best = np.sort(ref, axis=1)[:, ::-1][:, : min(k, x.shape[0])]
        np.testing.assert_allclose(scores[:, : best.shape[1]], best, rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------------------- persistence
@pytest.fixture(scope="module")
def saved_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    x = np.random.default_rng(1).standard_normal((60, DIM)).astype(np.float32)
    index = index_factory(DIM, "Int8,Rerank(Flat)")
    index.train(x)
    index.add(x, ids=np.arange(100, 160))
    path = tmp_path_factory.mktemp("tpl") / "ix"
    index.save(path)
    return path, x


def _copy(src: Path, dst: Path) -> None:
    import shutil

    shutil.copytree(src, dst, symlinks=True)


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name != ".embedlab.lock")


def _json_edit(doc: Any, rng: np.random.Generator) -> None:
    if isinstance(doc, dict) and doc:
        key = sorted(doc)[int(rng.integers(len(doc)))]
        if isinstance(doc[key], dict | list) and rng.random() < 0.6:
            _json_edit(doc[key], rng)
            return
        doc[key] = [None, -1, 0, 2**70, "x", 1.5, [], {}, True][int(rng.integers(9))]
    elif isinstance(doc, list) and doc:
        doc[int(rng.integers(len(doc)))] = [-1, 0, 10**9, "y"][int(rng.integers(4))]


MUTATIONS = ["flip", "truncate", "extend", "delete", "json_edit", "json_edit_resealed", "symlink"]


@FUZZ
@given(
    mutation=st.sampled_from(MUTATIONS),
    pick=st.integers(0, 10**6),
    seed=st.integers(0, 2**16),
)
def test_persistence_fuzz(
    saved_template: tuple[Path, np.ndarray],
    tmp_path_factory: pytest.TempPathFactory,
    mutation: str,
    pick: int,
    seed: int,
) -> None:
    template, x = saved_template
    base = tmp_path_factory.mktemp("case")
    path = base / "ix"
    _copy(template, path)
    outside = base / "outside.txt"
    outside.write_text("the user's file")
    rng = np.random.default_rng(seed)
    files = _files(path)
    victim = files[pick % len(files)]
    raw = victim.read_bytes()
    if mutation == "flip" and raw:
        pos = int(rng.integers(len(raw)))
        victim.write_bytes(
            raw[:pos] + bytes([raw[pos] ^ int(rng.integers(1, 256))]) + raw[pos + 1 :]
        )
    elif mutation == "truncate":
        victim.write_bytes(raw[: int(rng.integers(len(raw) + 1))])
    elif mutation == "extend":
        victim.write_bytes(raw + bytes(rng.integers(0, 256, int(rng.integers(1, 64)), np.uint8)))
    elif mutation == "delete":
        victim.unlink()
    elif mutation == "symlink":
        victim.unlink()
        os.symlink(outside, victim)
    elif mutation.startswith("json_edit"):
        jsons = [f for f in files if f.name == "index.json"]
        victim = jsons[pick % len(jsons)]
        doc = json.loads(victim.read_text())
        _json_edit(doc, rng)
        if mutation.endswith("resealed") and isinstance(doc, dict):
            doc["checksum"] = canonical_checksum(doc)
        victim.write_text(json.dumps(doc))
    try:
        loaded = load_index(path)
        _, got = loaded.search(x[:5], 5)
    except Exception as exc:
        if not _clear(exc):
            TALLY[("persistence", "crash")] += 1
            raise
        TALLY[("persistence", "clear error")] += 1
    else:
        # a load that succeeds must be the saved index (e.g. a whitespace flip in JSON)
        original = load_index(template)
        _, want = original.search(x[:5], 5)
        if not np.array_equal(got, want) or loaded.spec() != original.spec():
            TALLY[("persistence", "silent wrong")] += 1
            raise AssertionError(f"{mutation} of {victim.name} loaded a different index")
        TALLY[("persistence", "ok")] += 1
    assert outside.read_text() == "the user's file"
    # whatever happened, a save with overwrite works and loses no user file
    (path / "NOTES.md").write_text("notes")
    fresh = index_factory(DIM, "Flat")
    fresh.add(x[:3])
    try:
        fresh.save(path, overwrite=True)
    except ValueError as exc:  # a manifest mangled beyond recognition: not ours any more
        assert "not an embedlab index" in str(exc)
        TALLY[("save after damage", "refused")] += 1
    else:
        assert load_index(path).ntotal == 3
        TALLY[("save after damage", "ok")] += 1
    assert (path / "NOTES.md").read_text() == "notes" and outside.exists()


@FUZZ
@given(target=st.sampled_from(["absent", "empty", "file", "foreign", "foreign_json", "index"]))
def test_save_target_fuzz(tmp_path_factory: pytest.TempPathFactory, target: str) -> None:
    base = tmp_path_factory.mktemp("save")
    path = base / "p"
    if target != "absent":
        if target == "file":
            path.write_text("user data")
        else:
            path.mkdir()
    if target in ("foreign", "foreign_json"):
        (path / ("index.json" if target == "foreign_json" else "thesis.tex")).write_text("{}")
    if target == "index":
        index_factory(DIM, "Flat").save(path)
    before = {p: p.read_bytes() for p in base.rglob("*") if p.is_file()}
    index = index_factory(DIM, "Flat")
    for overwrite in (False, True):
        try:
            index.save(path, overwrite=overwrite)
            TALLY[("save target", "ok")] += 1
        except ValueError:
            TALLY[("save target", "clear error")] += 1
            after = {p: p.read_bytes() for p in base.rglob("*") if p.is_file()}
            assert after == before  # a refused save changes nothing
            continue
        assert target in ("absent", "empty", "index")
        assert load_index(path).ntotal == 0
        if not overwrite:
            assert target != "index"
        before = {p: p.read_bytes() for p in base.rglob("*") if p.is_file()}
    assert data_folder(path).exists() if target in ("absent", "empty", "index") else True
