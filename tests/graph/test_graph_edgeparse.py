"""The vectorised edge-list parser gives what the line-by-line reader gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlab.graph import io as gio
from embedlab.graph._edgeparse import int_rows, parse_fast


@pytest.mark.parametrize("seed", range(6))
def test_fast_path_equals_line_reader(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(5, 300))
    pool = rng.integers(0, 50, size=60) * int(rng.choice([1, 1000, 10**15]))
    ids = [("00" if rng.random() < 0.1 else "") + str(x) for x in pool]
    weighted = seed % 2 == 1
    seps = [" ", "\t", ",", "  ", " , "]
    lines = []
    for _ in range(m):
        a, b = rng.choice(ids, size=2)
        sep = str(rng.choice(seps))
        line = f"{a}{sep}{b}"
        if weighted:
            line += f"{sep}{rng.uniform(0.1, 3):.4f}"
        lines.append(line + ("\r" if rng.random() < 0.2 else ""))
        if rng.random() < 0.05:
            lines.append("   ")
    path = tmp_path / "e.tsv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning) if _has_loop(lines) else _nothing():
        fast = gio.load_edgelist(path)
    assert parse_fast(path.read_bytes()) is not None
    src, dst, _ = gio._parse_lines(path)
    assert fast.node_ids == gio._rows_of_ids(src, dst)[2]
    # rebuild the slow graph through the same merge code by parsing with the fast path off
    slow = _load_slow(path)
    assert (fast.adj != slow.adj).nnz == 0
    assert fast.adj.shape == slow.adj.shape


def _has_loop(lines: list[str]) -> bool:
    for line in lines:
        parts = [p for p in gio._SPLIT.split(line.strip()) if p]
        if len(parts) >= 2 and (parts[0].lstrip("0") or "0") == (parts[1].lstrip("0") or "0"):
            return True
    return False


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _load_slow(path: Path) -> gio.Graph:
    import warnings

    real = gio.parse_fast
    real_rows = gio.int_rows
    try:
        gio.parse_fast = lambda raw: None  # type: ignore[assignment]
        gio.int_rows = lambda s, d: None  # type: ignore[assignment]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return gio.load_edgelist(path)
    finally:
        gio.parse_fast = real
        gio.int_rows = real_rows


def test_unusual_files_take_the_line_reader(tmp_path: Path) -> None:
    cases = {
        "comment": b"1 2\n# note\n2 3\n",
        "ragged": b"1 2\n2 3 0.5\n",
        "badweight": b"1 2 x\n",
        "negweight": b"1 2 -1\n",
        "latin1": b"1 \xe9\n",
    }
    for name, raw in cases.items():
        assert parse_fast(raw) is None, name
    assert int_rows(["1", "-2"], ["3", "4"]) is None
    assert int_rows(["1", "2"], ["\u0663", "4"]) is None  # Arabic-Indic digit: a name
    assert int_rows(["1" * 30], ["2"]) is None
    path = tmp_path / "ragged.tsv"
    path.write_bytes(cases["ragged"])
    with pytest.raises(ValueError, match="line 2"):
        gio.load_edgelist(path)
    named = tmp_path / "named.tsv"
    named.write_text("alice bob\nbob carol\n")
    g = gio.load_edgelist(named)
    assert g.node_ids == ["alice", "bob", "carol"] and g.n_edges == 2


def test_numba_kernel_equals_the_numpy_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embedlab.graph import _edgeparse
    from embedlab.graph._edgekernel import parse_int_pairs

    rng = np.random.default_rng(7)
    edges = rng.integers(0, 10**6, size=(400, 2))
    lines = [f"{a}{rng.choice([' ', chr(9), ',', '  '])}{b}" for a, b in edges]
    raw = ("\n".join(lines) + "\r\n\n").encode()
    pairs = parse_int_pairs(raw)
    assert pairs is not None
    np.testing.assert_array_equal(pairs, edges)
    for bad in (b"1 2 3\n", b"1\n", b"1 -2\n", b"1 x\n", b"1 2\n3\n", b"1 " + b"9" * 19 + b"\n"):
        assert parse_int_pairs(bad) is None, bad
    path = tmp_path / "e.tsv"
    path.write_bytes(raw)
    slow = gio.load_edgelist(path)  # below MIN_BYTES: the numpy path
    monkeypatch.setattr(_edgeparse, "MIN_BYTES", 0)
    fast = gio.load_edgelist(path)
    assert (fast.adj != slow.adj).nnz == 0 and fast.node_ids == slow.node_ids
